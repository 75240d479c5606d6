import type { ConnectionRecord, Logger, PresenceMember } from '@authsocket/server';
import { StoreUnavailableError } from '@authsocket/server';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRedisEngine, type RedisEngine } from '../src/index.js';
import { EngineNodes, RedisServer, TcpProxy, until } from './helpers.js';

// The node lease's sweep and its guards against fighting: real redis-server, real engines.

const LEASE_MS = 600;
const LEASES = 'authsocket:leases';

let redis: RedisServer;
let raw: Redis;
const engines = new EngineNodes();

beforeAll(async () => {
  redis = await RedisServer.start();
  raw = new Redis(redis.url);
}, 30_000);
afterAll(async () => {
  raw?.disconnect();
  await redis?.stop();
});
afterEach(async () => {
  await engines.closeAll();
});

interface Line {
  level: keyof Logger;
  fields: Record<string, unknown>;
  message: string;
}

/** A logger keeping every line, to assert on what the lease did. */
function recording(): { lines: Line[]; logger: Logger } {
  const lines: Line[] = [];
  const at = (level: keyof Logger) => (fields: Record<string, unknown>, message: string) => void lines.push({ level, fields, message });
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}

let sequence = 0;
function record(user: string, node: string): ConnectionRecord {
  const now = Date.now();
  return { id: `lc-${++sequence}-${now}`, user, node, openedAt: now, expiresAt: now + 300_000, state: 'authenticated' };
}

async function startNode(node: string, held: ConnectionRecord[] = [], logger?: Logger, leaseMs = LEASE_MS): Promise<RedisEngine> {
  const engine = engines.track(
    createRedisEngine(redis.url, { commandTimeoutMs: 2_000, maxReconnectDelayMs: 100, leaseMs, ...(logger ? { logger } : {}) }),
  );
  await engine.ready();
  await engine.connectionStore.start(node, () => held);
  await engine.presenceStore.start(node, () => [] as Array<[string, PresenceMember]>);
  return engine;
}

/** Writes `count` connections of `user` under `lease` as a node would have, in pipelined chunks. */
async function leftBehind(lease: string, user: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let start = 0; start < count; start += 1_000) {
    const pipeline = raw.pipeline();
    for (let i = start; i < Math.min(count, start + 1_000); i++) {
      const entry = record(user, lease);
      const value = `${lease}\n${JSON.stringify(entry)}`;
      pipeline.hset(`authsocket:cu:${user}`, entry.id, value).set(`authsocket:ci:${entry.id}`, value).hset(`authsocket:cl:${lease}`, entry.id, user);
      ids.push(entry.id);
    }
    await pipeline.exec();
  }
  return ids;
}

/** Redis's clock in ms, which the lease scripts use. */
async function redisNow(client: Redis = raw): Promise<number> {
  const [seconds, micros] = await client.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

const sweptBy = (lines: Line[], lease: string, phase: number) =>
  lines.filter((line) => line.message === 'redis registry swept a dead lease' && line.fields.lease === lease && line.fields.phase === phase).length;

describe('the node lease sweep', () => {
  it('sweeps a big dead lease in batches, by one node only, while both nodes keep renewing', async () => {
    const user = `big-${sequence++}`;
    const lease = `big@${sequence++}`;
    await leftBehind(lease, user, 20_000);
    await raw.zadd(LEASES, 0, lease);
    const a = recording();
    const b = recording();
    // A lease long enough that one batch of 500 (one HSCAN, ~1,000 single-key scripts) always fits
    // in a claim's extension, even on a loaded CI machine: a takeover here would be a slow batch, not a bug.
    await startNode('sweeper-a', [], a.logger, 3_000);
    await startNode('sweeper-b', [], b.logger, 3_000);
    const gone = async () =>
      (await raw.exists(`authsocket:cu:${user}`, `authsocket:cl:${lease}`)) === 0 && (await raw.zscore(LEASES, lease)) === null;
    await until(gone, 60_000, 'the big lease swept, then removed');
    // Claimed in one script: one node swept each phase, never both.
    expect(sweptBy(a.lines, lease, 1) + sweptBy(b.lines, lease, 1)).toBe(1);
    expect(sweptBy(a.lines, lease, 3) + sweptBy(b.lines, lease, 3)).toBe(1);
    // The renewal never waited for the sweep: neither node's own lease lapsed.
    const lapsed = [...a.lines, ...b.lines].filter((line) => line.message.includes('lapsed') || line.message.includes('not renewed'));
    expect(lapsed).toEqual([]);
  }, 90_000);

  it('takes over a claim whose sweeper stopped extending it, and leaves a claim being extended alone', async () => {
    const user = `claimed-${sequence++}`;
    const abandoned = `abandoned@${sequence++}`;
    const held = `held@${sequence++}`;
    const abandonedIds = await leftBehind(abandoned, user, 50);
    const heldIds = await leftBehind(held, user, 50);
    const now = await redisNow();
    // Phase 1 claims (score -(until * 4 + 1)): one lapsed a moment ago, one good for a minute.
    await raw.zadd(LEASES, -((now - 1) * 4 + 1), abandoned, -((now + 60_000) * 4 + 1), held);
    const watcher = recording();
    await startNode('taker', [], watcher.logger);
    await until(async () => (await raw.zscore(LEASES, abandoned)) === null, 20_000, 'the abandoned claim taken over and swept');
    expect(await raw.hmget(`authsocket:cu:${user}`, ...abandonedIds)).toEqual(abandonedIds.map(() => null));
    // Several sweeps later, the claim another node still holds is untouched.
    expect(await raw.hlen(`authsocket:cl:${held}`)).toBe(heldIds.length);
    expect((await raw.hmget(`authsocket:cu:${user}`, ...heldIds)).every((value) => value !== null)).toBe(true);
    expect(sweptBy(watcher.lines, held, 1)).toBe(0);
  }, 30_000);

  it('sweeps again what a write still in flight re-created under a swept lease', async () => {
    const user = `late-${sequence++}`;
    const lease = `late@${sequence++}`;
    await leftBehind(lease, user, 3);
    await raw.zadd(LEASES, 0, lease);
    await startNode('tombstones');
    // Swept once: a tombstone (phase 2, score -(until * 4 + 2)) waits for writes still in flight.
    await until(async () => {
      const score = await raw.zscore(LEASES, lease);
      return score !== null && Number(score) < 0 && -Number(score) % 4 === 2;
    }, 10_000, 'the lease a tombstone');
    expect(await raw.exists(`authsocket:cu:${user}`, `authsocket:cl:${lease}`)).toBe(0);
    const [late] = await leftBehind(lease, user, 1);
    await until(async () => (await raw.zscore(LEASES, lease)) === null, 20_000, 'the tombstone swept and removed');
    expect(await raw.hget(`authsocket:cu:${user}`, late as string)).toBeNull();
    expect(await raw.exists(`authsocket:ci:${late}`, `authsocket:cl:${lease}`)).toBe(0);
  }, 40_000);
});

describe('the node lease guards', () => {
  it('lets two live processes with one node id keep their leases, and says node ids must be unique', async () => {
    const user = `twin-${sequence++}`;
    const first = record(user, 'twin');
    const second = record(user, 'twin');
    const a = recording();
    const b = recording();
    await startNode('twin', [first], a.logger);
    await startNode('twin', [second], b.logger);
    const watcher = await startNode('twin-watcher');
    const errors = () => [...a.lines, ...b.lines].filter((line) => line.level === 'error');
    await until(() => errors().length > 0, LEASE_MS * 10, 'the duplicate node id reported');
    expect(errors()[0]?.message).toContain('node ids must be unique');
    // No fight: each kept its one lease, and both connections stay listed.
    const twins = (await raw.zrangebyscore(LEASES, await redisNow(), '+inf')).filter((lease) => lease.startsWith('twin@'));
    expect(twins).toHaveLength(2);
    expect((await watcher.connectionStore.ofUser(user)).map((entry) => entry.id).sort()).toEqual([first.id, second.id].sort());
    const retaken = [...a.lines, ...b.lines].filter((line) => line.message.includes('lapsed'));
    expect(retaken).toEqual([]);
    // Reported once per process, not every tick.
    expect(errors().length).toBeLessThanOrEqual(2);
  }, 20_000);

  it('fails a join fast with StoreUnavailableError while there is no lease, instead of waiting for one', async () => {
    const server = await RedisServer.start();
    try {
      const engine = engines.track(createRedisEngine(server.url, { commandTimeoutMs: 500, maxReconnectDelayMs: 100, leaseMs: LEASE_MS }));
      await engine.ready();
      await server.stop();
      await until(() => engine.status !== 'ready', 5_000, 'the engine sees Redis down');
      void engine.presenceStore.start('leaseless', () => []).catch(() => {});
      await expect(engine.presenceStore.join('room', { user: 'u', connection: 'c' })).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      await server.stop();
    }
  });

  it('answers 503 for every read while its own lease is missing, until it has rewritten its entries', async () => {
    const user = `lost-${sequence++}`;
    const held = [record(user, 'amnesia')];
    const node = await startNode('amnesia', held);
    await until(async () => (await node.connectionStore.ofUser(user)).length === 1, 5_000, 'listed');
    // What a restart without persistence leaves: nothing at all.
    await raw.flushall();
    await expect(node.connectionStore.get(held[0]?.id as string)).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(node.presenceStore.count('any')).rejects.toBeInstanceOf(StoreUnavailableError);
    await until(async () => (await node.connectionStore.get(held[0]?.id as string).catch(() => undefined)) !== undefined, LEASE_MS * 5, 'rewritten');
    expect(await node.connectionStore.ofUser(user)).toEqual(held);
  });

  it('retires a lease whose ACQUIRE was in flight when the store closed', async () => {
    const server = await RedisServer.start();
    const watch = new Redis(server.url);
    try {
      // A long lease, so that a lease left live after the close cannot lapse during the test.
      const engine = engines.track(createRedisEngine(server.url, { commandTimeoutMs: 5_000, leaseMs: 60_000 }));
      await engine.ready();
      server.signal('SIGSTOP');
      // ACQUIRE goes out and waits in the frozen server's socket; the close comes before its reply.
      void engine.connectionStore.start('closing', () => []);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const closed = engine.connectionStore.close();
      server.signal('SIGCONT');
      await closed;
      const leases = async () =>
        (await watch.zrange(LEASES, '0', '-1', 'WITHSCORES')).filter((_, i, all) => (all[i - (i % 2)] as string).startsWith('closing@'));
      await until(async () => (await leases()).length === 2, 5_000, 'the ACQUIRE in flight ran');
      const now = await redisNow(watch);
      await until(async () => Number((await leases())[1]) <= now, 5_000, 'the fresh lease retired after the close');
    } finally {
      server.signal('SIGCONT');
      watch.disconnect();
      await server.stop();
    }
  });

  it('never lists a member whose leave was dropped while Redis was unreachable', async () => {
    const proxy = await TcpProxy.start(redis.port);
    try {
      const topic = `dropped-${sequence++}`;
      const members: Array<[string, PresenceMember]> = [];
      const engine = engines.track(createRedisEngine(proxy.url, { commandTimeoutMs: 1_000, maxReconnectDelayMs: 100, leaseMs: LEASE_MS }));
      await engine.ready();
      await engine.connectionStore.start('leaver', () => []);
      await engine.presenceStore.start('leaver', () => members);
      const gone: PresenceMember = { user: 'gone', connection: 'c-gone' };
      const kept: PresenceMember = { user: 'kept', connection: 'c-kept' };
      for (const joined of [gone, kept]) {
        expect(await engine.presenceStore.join(topic, joined)).toBe(true);
        members.push([topic, joined]);
      }
      const watcher = await startNode('leave-watcher');
      proxy.cut();
      await until(() => engine.status !== 'ready', 5_000, 'the node sees Redis down');
      // The member leaves while Redis is unreachable: its leave cannot be sent, and a join fails fast.
      members.shift();
      engine.presenceStore.leave(topic, gone.connection);
      await expect(engine.presenceStore.join(topic, gone)).rejects.toBeInstanceOf(StoreUnavailableError);
      proxy.heal();
      const listed = async () => (await watcher.presenceStore.members(topic)).map((entry) => entry.connection);
      await until(async () => (await listed()).join() === kept.connection, 10_000, 'the dropped leave repaired');
      expect(await watcher.presenceStore.count(topic)).toBe(1);
    } finally {
      await proxy.close();
    }
  });
});
