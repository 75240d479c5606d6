import { randomBytes } from 'node:crypto';
import { ConfigError, ticketKey } from '@authsocket/server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type BrokerStatus, createRedisEngine, Keys, type RedisEngineOptions } from '../src/index.js';
import { type EngineNode, EngineNodes, RedisCluster, RedisServer, until } from './helpers.js';

let cluster: RedisCluster;
const nodes = new EngineNodes();

beforeAll(async () => {
  cluster = await RedisCluster.start(3);
}, 30_000);
afterAll(async () => {
  await cluster?.stop();
});
afterEach(() => nodes.closeAll());

const node = (options: RedisEngineOptions = {}) =>
  nodes.start({ cluster: cluster.seeds }, { commandTimeoutMs: 1_000, maxReconnectDelayMs: 100, ...options });

/** One stream name per shard, so a test touches every shard channel and every slot owner. */
function streamPerShard(keys: Keys, tag: string): string[] {
  const streams = new Map<number, string>();
  for (let i = 0; streams.size < keys.shards && i < 10_000; i++) {
    const stream = `user:${tag}-${i}`;
    if (!streams.has(keys.shardOf(stream))) streams.set(keys.shardOf(stream), stream);
  }
  return [...streams.values()];
}

describe('Redis Cluster target', () => {
  it('spreads the shard channels over every master', async () => {
    const keys = new Keys('authsocket:', 16);
    const owners = new Set(await Promise.all(keys.channels.map((channel) => cluster.ownerOf(channel))));
    // The premise of the next test: its publications cross all three masters.
    expect(owners.size).toBe(3);
  });

  it('publishes, reads and fans out across slots: every node gets every shard’s publications in order', async () => {
    const [a, b] = await Promise.all([node(), node()]);
    const streams = streamPerShard(new Keys('authsocket:', 16), randomBytes(4).toString('hex'));
    expect(streams).toHaveLength(16);
    for (const stream of streams) {
      for (let i = 1; i <= 3; i++) {
        const publisher = i % 2 === 0 ? a : b;
        expect(await publisher.engine.broker.publish({ to: { user: stream.slice(5) }, data: String(i), stream })).toBe(1);
      }
    }
    for (const { received } of [a, b]) {
      await until(() => received.length === 48, 5_000, 'every publication on both nodes');
      for (const stream of streams) {
        expect(received.filter((p) => p.stream === stream).map((p) => [p.offset, p.data])).toEqual([
          [1, '1'],
          [2, '2'],
          [3, '3'],
        ]);
      }
    }
    const read = await b.engine.broker.read(streams[5]!, { epoch: a.received[0]!.epoch as string, offset: 0 });
    const epoch = (await b.engine.broker.position(streams[5]!)).epoch;
    expect((await b.engine.broker.read(streams[5]!, { epoch, offset: 1 })).publications.map((p) => p.data)).toEqual(['2', '3']);
    expect(read.position.offset).toBe(3);
    // Broadcasts (shard 0) and control messages reach the other node.
    await a.engine.broker.publish({ to: { everyone: true }, data: '"all"' });
    await a.engine.broker.control({ revoke: 'mallory' });
    await until(() => b.received.some((p) => p.data === '"all"') && b.controls.length === 1, 3_000, 'broadcast and control');
    expect(b.controls).toEqual([{ revoke: 'mallory' }]);
  });

  it('keeps tickets single-use and revocations shared, whatever slot their keys hash to', async () => {
    const [a, b] = await Promise.all([node(), node()]);
    const now = Date.now();
    const record = { user: 'alice', claims: { sub: 'alice' }, tokenExpiresAt: now + 60_000, issuedAt: now, expiresAt: now + 30_000 };
    const tickets = Array.from({ length: 12 }, () => ticketKey(randomBytes(32).toString('base64url')));
    const owners = new Set(await Promise.all(tickets.map((key) => cluster.ownerOf(`authsocket:t:${key}`))));
    expect(owners.size).toBeGreaterThan(1);
    for (const key of tickets) await a.engine.ticketStore.put(key, record, 10_000);
    for (const key of tickets) {
      const takes = await Promise.all([a, b, a, b].map((n) => n.engine.ticketStore.take(key, true)));
      expect(takes.filter((taken) => taken !== undefined)).toHaveLength(1);
    }
    await a.engine.revocationStore.revoke('bob', 1234);
    expect(await b.engine.revocationStore.revokedAt('bob')).toBe(1234);
  });

  it('keeps an idempotency key in the stream’s slot: the same key publishes once', async () => {
    const [a, b] = await Promise.all([node(), node()]);
    const stream = `user:idem-${randomBytes(4).toString('hex')}`;
    const publish = (n: EngineNode, data: string) =>
      n.engine.broker.publish({ to: { user: 'idem' }, data, stream }, { idempotencyKey: 'order-1' });
    expect(await publish(a, '"first"')).toBe(1);
    expect(await publish(b, '"retry"')).toBe(0);
    expect(await a.engine.broker.publish({ to: { everyone: true }, data: '"b1"' }, { idempotencyKey: 'k' })).toBe(1);
    expect(await b.engine.broker.publish({ to: { everyone: true }, data: '"b2"' }, { idempotencyKey: 'k' })).toBe(0);
    expect((await b.engine.broker.position(stream)).offset).toBe(1);
  });
});

describe('Redis Cluster misconfiguration', () => {
  it('refuses a redis:// URL that points at a Cluster node, with a ConfigError naming the URL', async () => {
    const engine = nodes.track(createRedisEngine(`redis://127.0.0.1:${cluster.nodes[0]!.port}`, { connectTimeoutMs: 3_000 }));
    const error = await engine.ready().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ option: 'url', message: expect.stringContaining('Redis Cluster node') });
  });

  it('refuses a cluster target whose nodes are not in cluster mode', async () => {
    const standalone = await RedisServer.start();
    try {
      const engine = nodes.track(createRedisEngine({ cluster: [`127.0.0.1:${standalone.port}`] }, { connectTimeoutMs: 3_000 }));
      const error = await engine.ready().catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ConfigError);
      expect(error).toMatchObject({ option: 'cluster', message: expect.stringContaining('not in cluster mode') });
    } finally {
      await standalone.stop();
    }
  });
});

describe('Redis Cluster liveness', () => {
  it('marks the broker not ready when one master freezes (SIGSTOP), and ready again when it thaws', async () => {
    const a = await node({ livenessIntervalMs: 200, livenessTimeoutMs: 500, commandTimeoutMs: 5_000 });
    const statuses: BrokerStatus[] = [];
    a.engine.broker.on('status', (status) => statuses.push(status));
    const keys = new Keys('authsocket:', 16);
    const stream = streamPerShard(keys, 'frozen')[3]!;
    const port = await cluster.ownerOf(keys.stream(stream).channel);
    const frozen = cluster.nodes.find((n) => n.port === port)!;
    frozen.signal('SIGSTOP');
    try {
      // Only the PING can notice: the command timeout is 5 s, and TCP sees nothing wrong.
      await until(() => a.engine.status === 'reconnecting', 2_500, 'reconnecting while one master is frozen');
    } finally {
      frozen.signal('SIGCONT');
    }
    await a.engine.ready(10_000);
    // The thawed master may flap once more while the other masters clear its FAIL flag.
    expect(statuses[0]).toBe('reconnecting');
    expect(statuses.at(-1)).toBe('ready');
    await until(
      async () => (await a.engine.broker.publish({ to: { user: 'frozen' }, data: '"thawed"', stream }).catch(() => 0)) === 1,
      10_000,
      'publishing on the thawed master',
    );
  }, 30_000);
});
