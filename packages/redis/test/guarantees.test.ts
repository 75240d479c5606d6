import { OutcomeUnknownError, type Publication, silentLogger, StoreUnavailableError } from '@authsocket/server';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Keys, RedisBroker, type RedisEngineOptions } from '../src/index.js';
import { Subscriber } from '../src/subscriber.js';
import { type EngineNode, EngineNodes, FAST_LIVENESS, RedisServer, TcpProxy, until } from './helpers.js';

let redis: RedisServer;
const nodes = new EngineNodes();
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  redis.signal('SIGCONT');
  await redis.stop();
});
afterEach(async () => {
  redis.signal('SIGCONT');
  await nodes.closeAll();
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

const node = (url = redis.url, options: RedisEngineOptions = {}) =>
  nodes.start(url, { ...FAST_LIVENESS, commandTimeoutMs: 1_000, ...options });

let counter = 0;
const fresh = (base: string) => `${base}-${++counter}-${Date.now()}`;

async function proxy(): Promise<TcpProxy> {
  const started = await TcpProxy.start(redis.port);
  cleanups.push(() => started.close());
  return started;
}

describe('idempotency keys', () => {
  it('publishes once per key and audience; a duplicate resolves 0 without publishing', async () => {
    const [a, b] = await Promise.all([node(), node()]);
    const user = fresh('idem');
    const stream = `user:${user}`;
    const publish = (n: EngineNode, to: Publication['to'], key: string, data: string, on = stream) =>
      n.engine.broker.publish({ to, data, stream: on }, { idempotencyKey: key });
    expect(await publish(a, { user }, 'order-1', '"first"')).toBe(1);
    expect(await publish(b, { user }, 'order-1', '"again"')).toBe(0);
    expect(await publish(a, { user }, 'order-2', '"second"')).toBe(1);
    // The same key for another audience is another publication.
    const other = fresh('idem');
    expect(await publish(a, { user: other }, 'order-1', '"other user"', `user:${other}`)).toBe(1);
    // Broadcasts too.
    expect(await a.engine.broker.publish({ to: { everyone: true }, data: '"b"' }, { idempotencyKey: 'order-1' })).toBe(1);
    expect(await b.engine.broker.publish({ to: { everyone: true }, data: '"b"' }, { idempotencyKey: 'order-1' })).toBe(0);
    await a.engine.broker.publish({ to: { everyone: true }, data: '"end"' });
    await until(() => b.received.some((p) => p.data === '"end"'), 2_000, 'the last broadcast');
    expect(b.received.map((p) => p.data)).toEqual(['"first"', '"second"', '"other user"', '"b"', '"end"']);
    const { epoch } = await a.engine.broker.position(stream);
    const history = await b.engine.broker.read(stream, { epoch, offset: 0 });
    expect(history.publications.map((p) => [p.offset, p.data])).toEqual([
      [1, '"first"'],
      [2, '"second"'],
    ]);
  });

  it('forgets a key after idempotencyWindowMs', async () => {
    const a = await node(redis.url, { idempotencyWindowMs: 200 });
    const publication = { to: { user: 'window' }, data: '1', stream: `user:${fresh('window')}` };
    expect(await a.engine.broker.publish(publication, { idempotencyKey: 'k' })).toBe(1);
    expect(await a.engine.broker.publish(publication, { idempotencyKey: 'k' })).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await a.engine.broker.publish(publication, { idempotencyKey: 'k' })).toBe(1);
  });

  it('rejects an idempotency key that is not a non-empty string', async () => {
    const a = await node();
    for (const key of ['', 42, null]) {
      await expect(
        a.engine.broker.publish({ to: { user: 'x' }, data: '1' }, { idempotencyKey: key as string }),
      ).rejects.toThrow("'idempotencyKey' must be a non-empty string");
    }
  });
});

describe('publish outcome', () => {
  it('rejects OutcomeUnknownError when the command was sent and Redis froze; a retry with the same key publishes at most once', async () => {
    const a = await node();
    const stream = `user:${fresh('frozen')}`;
    const publication = { to: { user: 'frozen' }, data: '"maybe"', stream };
    await a.engine.broker.position(stream);
    redis.signal('SIGSTOP');
    const error = await a.engine.broker.publish(publication, { idempotencyKey: 'pay-1' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OutcomeUnknownError);
    expect(error).toMatchObject({ code: 'ERR_OUTCOME_UNKNOWN' });
    redis.signal('SIGCONT');
    await a.engine.ready(3_000);
    // The caller retries with the same key, as the error says: exactly one publication in the end.
    await a.engine.broker.publish(publication, { idempotencyKey: 'pay-1' });
    const position = await a.engine.broker.position(stream);
    expect(position.offset).toBe(1);
  });

  it('rejects StoreUnavailableError, and publishes nothing, when the link is known down before sending', async () => {
    const link = await proxy();
    const a = await node(link.url);
    const stream = `user:${fresh('down')}`;
    link.cut();
    await until(() => a.engine.status === 'reconnecting', 2_000, 'reconnecting');
    const error = await a.engine.broker.publish({ to: { user: 'down' }, data: '1', stream }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(error).not.toBeInstanceOf(OutcomeUnknownError);
    link.heal();
    await a.engine.ready(3_000);
    expect((await a.engine.broker.position(stream)).offset).toBe(0);
  });

  it('resolves 0 (published) when the script committed but the echo never came back on the subscriber link', async () => {
    // Command connection direct, subscriber connections through a relay that is then black-holed.
    const link = await proxy();
    const keys = new Keys('authsocket:', 16);
    const command = new Redis(redis.url, { maxRetriesPerRequest: 0 });
    const liveness = { intervalMs: 200, timeoutMs: 500 };
    const subscriber = new Subscriber({
      channels: [keys.control, ...keys.channels],
      layout: () => new Map([['relay', [keys.control, ...keys.channels]]]),
      connect: () => new Redis(link.url, { maxRetriesPerRequest: 0, autoResubscribe: false, retryStrategy: () => 50 }),
      liveness,
      logger: silentLogger,
    });
    const broker = new RedisBroker(command, subscriber, {
      keys,
      maxEntries: 100,
      maxAgeMs: 60_000,
      streamTtlMs: 60_000,
      idempotencyWindowMs: 60_000,
      deliveryTimeoutMs: 300,
      startTimeoutMs: 3_000,
      trackedStreams: 100,
      liveness,
      commandNodes: () => [command],
      logger: silentLogger,
    });
    cleanups.push(async () => {
      await broker.close();
      await subscriber.close();
      command.disconnect();
    });
    subscriber.relayout();
    const received: Publication[] = [];
    await broker.start({ publication: (p) => received.push(p), control: () => {} });
    const stream = `user:${fresh('echo')}`;
    expect(await broker.publish({ to: { user: 'echo' }, data: '1', stream })).toBe(1);
    link.blackhole();
    // Sent while the broker still counts as ready: committed, but this node never sees it come back.
    expect(await broker.publish({ to: { user: 'echo' }, data: '2', stream })).toBe(0);
    expect(received.map((p) => p.data)).toEqual(['1']);
    const { epoch } = await broker.position(stream);
    expect((await broker.read(stream, { epoch, offset: 0 })).publications.map((p) => p.data)).toEqual(['1', '2']);
  });
});

describe('after a loss', () => {
  it('calls resync once the subscriber link is back and resubscribed, and emits resynced', async () => {
    const link = await proxy();
    const a = await node(link.url);
    let resynced = 0;
    a.engine.broker.on('resynced', () => resynced++);
    expect(a.resyncs).toBe(0);
    link.cut();
    await until(() => a.engine.status === 'reconnecting', 2_000, 'reconnecting');
    link.heal();
    await a.engine.ready(3_000);
    await until(() => a.resyncs === 1, 1_000, 'resync');
    expect(resynced).toBe(1);
  });

  it('names the node by the nodeId option', async () => {
    const a = await node(redis.url, { nodeId: 'node-a' });
    const b = await node();
    expect(a.engine.broker.nodeId).toBe('node-a');
    expect(b.engine.broker.nodeId).toMatch(/^[\w-]{12}$/);
    // Two engines given the same id still tell their own publications apart.
    const c = await node(redis.url, { nodeId: 'node-a' });
    a.received.length = 0;
    expect(await c.engine.broker.publish({ to: { everyone: true }, data: '"c"' })).toBe(1);
    expect(await a.engine.broker.publish({ to: { everyone: true }, data: '"a"' })).toBe(1);
    expect(a.received.map((p) => p.data)).toEqual(['"c"', '"a"']);
  });

  it('emits control lag from the sender’s timestamp', async () => {
    const [a, b] = await Promise.all([node(), node()]);
    const lags: number[] = [];
    b.engine.broker.on('control', ({ lagMs }) => lags.push(lagMs));
    await a.engine.broker.control({ revoke: 'mallory' });
    await until(() => lags.length === 1, 2_000, 'control lag');
    expect(lags[0]).toBeGreaterThanOrEqual(0);
    expect(Number.isFinite(lags[0])).toBe(true);
  });
});

describe('new epoch', () => {
  it('delivers a new epoch’s first publications from history to a node whose link came back late', async () => {
    // Its own server: this test restarts it without its data.
    const own = await RedisServer.start();
    cleanups.push(() => own.stop());
    const link = await TcpProxy.start(own.port);
    cleanups.push(() => link.close());
    const a = await node(own.url);
    const b = await node(link.url);
    const changes: { stream: string; from: string; to: string }[] = [];
    const repairs: { stream: string; missed: number; recovered: number }[] = [];
    b.engine.broker.on('epochChanged', (change) => changes.push(change));
    b.engine.broker.on('gapRepaired', (repair) => repairs.push(repair));
    const stream = 'user:epoch';
    const publish = (data: string) => a.engine.broker.publish({ to: { user: 'epoch' }, data, stream });
    await publish('"old 1"');
    await publish('"old 2"');
    await until(() => b.received.length === 2, 2_000, 'old epoch on b');
    const oldEpoch = b.received[0]!.epoch as string;

    link.cut();
    await own.kill();
    await own.restart();
    await a.engine.ready(3_000);
    for (let i = 1; i <= 20; i++) await publish(`"new ${i}"`);
    // B comes back only now: it missed the new epoch's first 20 publications live.
    link.heal();
    await b.engine.ready(3_000);
    await publish('"new 21"');
    await until(() => b.received.length === 23, 3_000, 'new epoch on b');
    const newEpoch = b.received[2]!.epoch as string;
    expect(newEpoch).not.toBe(oldEpoch);
    expect(b.received.slice(2).map((p) => [p.epoch, p.offset, p.data])).toEqual(
      Array.from({ length: 21 }, (_, i) => [newEpoch, i + 1, `"new ${i + 1}"`]),
    );
    expect(changes).toEqual([{ stream, from: oldEpoch, to: newEpoch }]);
    expect(repairs).toEqual([{ stream, missed: 20, recovered: 20 }]);
  });

  it('reports a same-epoch gap it repaired', async () => {
    const link = await proxy();
    const a = await node();
    const b = await node(link.url);
    const repairs: { stream: string; missed: number; recovered: number }[] = [];
    b.engine.broker.on('gapRepaired', (repair) => repairs.push(repair));
    const stream = `user:${fresh('gap')}`;
    const publish = (data: number) => a.engine.broker.publish({ to: { user: 'gap' }, data: String(data), stream });
    await publish(1);
    await until(() => b.received.length === 1, 2_000, 'first');
    link.cut();
    await until(() => b.engine.status === 'reconnecting', 2_000, 'reconnecting');
    await publish(2);
    await publish(3);
    link.heal();
    await b.engine.ready(3_000);
    await publish(4);
    await until(() => b.received.length === 4, 2_000, 'repaired');
    expect(b.received.map((p) => p.data)).toEqual(['1', '2', '3', '4']);
    expect(repairs).toEqual([{ stream, missed: 2, recovered: 2 }]);
  });
});
