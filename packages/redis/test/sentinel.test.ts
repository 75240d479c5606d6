import { OutcomeUnknownError, StoreUnavailableError } from '@authsocket/server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type EngineNode, EngineNodes, FAST_LIVENESS, SentinelSet, until } from './helpers.js';

let set: SentinelSet;
const nodes = new EngineNodes();

beforeAll(async () => {
  set = await SentinelSet.start(1);
}, 30_000);
afterAll(async () => {
  await set?.stop();
});
afterEach(() => nodes.closeAll());

const node = () => nodes.start({ sentinels: set.addresses, name: set.name }, FAST_LIVENESS);

describe('Sentinel target', () => {
  it('follows a failover (master killed): nothing acknowledged is lost, and the engine is ready again', async () => {
    const [a, b] = await Promise.all([node(), node()]);
    const stream = 'user:sentinel';
    const publish = (n: EngineNode, data: string) => n.engine.broker.publish({ to: { user: 'sentinel' }, data, stream });
    const acknowledged: string[] = [];
    for (let i = 0; i < 20; i++) {
      expect(await publish(i % 2 === 0 ? a : b, `"before ${i}"`)).toBe(1);
      acknowledged.push(`"before ${i}"`);
    }
    const { epoch } = await a.engine.broker.position(stream);
    // Replication is asynchronous: what the replica has not yet received, a failover loses (see the report).
    await set.replicated();
    const oldMaster = set.master.port;
    await set.master.kill();

    // Publishing all along: each attempt is acknowledged, or fails with an error that says whether to retry.
    const outcomes = { unavailable: 0, unknown: 0 };
    const deadline = Date.now() + 15_000;
    let i = 0;
    while (Date.now() < deadline) {
      const data = `"during ${i++}"`;
      try {
        await publish(a, data);
        acknowledged.push(data);
      } catch (error) {
        if (error instanceof OutcomeUnknownError) outcomes.unknown++;
        else if (error instanceof StoreUnavailableError) outcomes.unavailable++;
        else throw error;
      }
      if (a.statuses.includes('reconnecting') && a.engine.status === 'ready' && b.engine.status === 'ready') break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(a.engine.status).toBe('ready');
    expect(b.engine.status).toBe('ready');
    expect(await set.masterPort()).toBe(set.replica.port);
    expect(set.replica.port).not.toBe(oldMaster);
    expect(outcomes.unavailable + outcomes.unknown).toBeGreaterThan(0);

    expect(await publish(b, '"after"')).toBe(1);
    acknowledged.push('"after"');
    // The promoted replica has the stream: same epoch, every acknowledged publication in history, in order.
    const read = await b.engine.broker.read(stream, { epoch, offset: 0 });
    expect(read.recovered).toBe(true);
    const history = read.publications.map((p) => p.data);
    expect(history.filter((data) => acknowledged.includes(data))).toEqual(acknowledged);
    expect(read.publications.map((p) => p.offset)).toEqual(read.publications.map((_, index) => index + 1));
    // B delivered every position once, in order (live, or repaired from history), and resynced.
    await until(() => b.received.at(-1)?.data === '"after"', 3_000, 'b got the last publication');
    expect(b.received.map((p) => p.offset)).toEqual(read.publications.map((p) => p.offset));
    expect(b.resyncs).toBeGreaterThanOrEqual(1);
    expect(a.statuses).toContain('reconnecting');
  }, 30_000);
});
