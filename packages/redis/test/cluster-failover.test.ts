import { OutcomeUnknownError, StoreUnavailableError } from '@authsocket/server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Keys } from '../src/index.js';
import { type EngineNode, EngineNodes, FAST_LIVENESS, RedisCluster, until } from './helpers.js';

let cluster: RedisCluster;
const nodes = new EngineNodes();

beforeAll(async () => {
  cluster = await RedisCluster.start(3, 1);
}, 30_000);
afterAll(async () => {
  await cluster?.stop();
});
afterEach(() => nodes.closeAll());

const node = () => nodes.start({ cluster: cluster.seeds }, FAST_LIVENESS);

describe('Redis Cluster failover', () => {
  it('resubscribes on the promoted replica when a master is killed, losing nothing acknowledged', async () => {
    const [a, b] = await Promise.all([node(), node()]);
    const stream = 'user:cluster-failover';
    const { channel } = new Keys('authsocket:', 16).stream(stream);
    const publish = (n: EngineNode, data: string) => n.engine.broker.publish({ to: { user: 'cluster-failover' }, data, stream });
    const acknowledged: string[] = [];
    for (let i = 0; i < 5; i++) {
      expect(await publish(i % 2 === 0 ? a : b, `"before ${i}"`)).toBe(1);
      acknowledged.push(`"before ${i}"`);
    }
    const { epoch } = await a.engine.broker.position(stream);
    const doomed = await cluster.ownerOf(channel);
    const replica = await cluster.replicaInSync(doomed);
    await cluster.node(doomed).kill();

    const deadline = Date.now() + 15_000;
    for (let i = 0; Date.now() < deadline; i++) {
      const data = `"during ${i}"`;
      const delivered = await publish(a, data).then(
        (count) => count,
        (error: unknown) => {
          if (error instanceof OutcomeUnknownError || error instanceof StoreUnavailableError) return -1;
          throw error;
        },
      );
      if (delivered >= 0) acknowledged.push(data);
      // Back when a publish on the stream's (new) master came back to this node through its new subscription.
      if (delivered === 1 && a.statuses.includes('reconnecting') && b.engine.status === 'ready') break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(await cluster.ownerOf(channel)).toBe(replica);
    expect(a.engine.status).toBe('ready');
    expect(await publish(b, '"after"')).toBe(1);
    acknowledged.push('"after"');
    const read = await b.engine.broker.read(stream, { epoch, offset: 0 });
    expect(read.recovered).toBe(true);
    expect(read.publications.map((p) => p.data).filter((data) => acknowledged.includes(data))).toEqual(acknowledged);
    await until(() => b.received.at(-1)?.data === '"after"', 3_000, 'b got the last publication');
    expect(b.received.map((p) => p.offset)).toEqual(read.publications.map((p) => p.offset));
    expect(b.resyncs).toBeGreaterThanOrEqual(1);
  }, 30_000);
});
