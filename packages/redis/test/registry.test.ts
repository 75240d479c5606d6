import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { ConfigError, type ConnectionRecord, type PresenceMember, StoreUnavailableError } from '@authsocket/server';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRedisEngine, type RedisEngine, type RedisEngineOptions, type RedisTarget } from '../src/index.js';
import { EngineNodes, RedisCluster, RedisServer, TcpProxy, until } from './helpers.js';

const LEASE_MS = 600;
const HOLDER = fileURLToPath(new URL('./fixtures/registry-node.mjs', import.meta.url));

let redis: RedisServer;
let cluster: RedisCluster;
const engines = new EngineNodes();
const children = new Set<ChildProcess>();

beforeAll(async () => {
  [redis, cluster] = await Promise.all([RedisServer.start(), RedisCluster.start(3)]);
}, 30_000);
afterAll(async () => {
  await Promise.all([redis?.stop(), cluster?.stop()]);
});
afterEach(async () => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
  await engines.closeAll();
});

async function engine(target: RedisTarget = redis.url, options: RedisEngineOptions = {}): Promise<RedisEngine> {
  const created = engines.track(createRedisEngine(target, { commandTimeoutMs: 1_000, maxReconnectDelayMs: 100, leaseMs: LEASE_MS, ...options }));
  await created.ready();
  return created;
}

let sequence = 0;
function record(user: string, node: string, overrides: Partial<ConnectionRecord> = {}): ConnectionRecord {
  const now = Date.now();
  return { id: `c-${++sequence}-${now}`, user, node, openedAt: now, expiresAt: now + 300_000, state: 'authenticated', ...overrides };
}

const member = (user: string, connection: string): PresenceMember => ({ user, connection, info: { name: user.toUpperCase() } });

/** A node whose store lists `held` (and rewrites it when asked). */
async function startNode(target: RedisTarget, node: string, held: ConnectionRecord[] = [], members: Array<[string, PresenceMember]> = []) {
  const created = await engine(target);
  await created.connectionStore.start(node, () => held);
  await created.presenceStore.start(node, () => members);
  return created;
}

/** The registry of another process, which the test kills -9. */
async function holderProcess(node: string, records: ConnectionRecord[], members: Array<[string, PresenceMember]>): Promise<ChildProcess> {
  const child = spawn(process.execPath, [HOLDER, redis.url, node, String(LEASE_MS), JSON.stringify(records), JSON.stringify(members)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  await until(() => output.includes('ready'), 10_000, `holder ${node} ready (${output})`);
  return child;
}

const ids = (records: readonly { id?: string; connection?: string }[]) => records.map((entry) => entry.id ?? entry.connection).sort();

for (const topology of ['standalone', 'cluster'] as const) {
  const target = (): RedisTarget => (topology === 'standalone' ? redis.url : { cluster: cluster.seeds });

  describe(`RedisConnectionStore (${topology})`, () => {
    it('puts, gets, lists per user across nodes and deletes', async () => {
      const a = await startNode(target(), `a-${topology}`);
      const b = await startNode(target(), `b-${topology}`);
      const user = `alice-${topology}-${sequence}`;
      const onA = record(user, `a-${topology}`);
      const onB = record(user, `b-${topology}`);
      a.connectionStore.put(onA);
      b.connectionStore.put(onB);
      // Fire and forget over keys that may live on different Cluster masters: wait for every one.
      const listed = async () =>
        (await a.connectionStore.ofUser(user)).length === 2 &&
        (await b.connectionStore.get(onA.id)) !== undefined &&
        (await a.connectionStore.countsByNode())[`b-${topology}`] === 1;
      await until(listed, 5_000, 'both listed');
      expect(ids(await b.connectionStore.ofUser(user))).toEqual(ids([onA, onB]));
      expect(await b.connectionStore.get(onA.id)).toEqual(onA);
      expect(await a.connectionStore.countsByNode()).toMatchObject({ [`a-${topology}`]: 1, [`b-${topology}`]: 1 });
      a.connectionStore.delete(onA.id, user);
      const deleted = async () =>
        (await b.connectionStore.get(onA.id)) === undefined &&
        (await b.connectionStore.ofUser(user)).length === 1 &&
        (await a.connectionStore.countsByNode())[`a-${topology}`] === 0;
      await until(deleted, 5_000, 'deleted');
      expect(await b.connectionStore.ofUser(user)).toEqual([onB]);
      expect(await a.connectionStore.countsByNode()).toMatchObject({ [`a-${topology}`]: 0, [`b-${topology}`]: 1 });
    });

    it('replaces a record on a new expiresAt and a new state', async () => {
      const a = await startNode(target(), `a2-${topology}`);
      const first = record(`bob-${topology}`, `a2-${topology}`);
      a.connectionStore.put(first);
      const held = { ...first, state: 'held' as const };
      a.connectionStore.put(held);
      await until(async () => (await a.connectionStore.get(first.id))?.state === 'held', 5_000, 'held');
      const renewed = { ...first, expiresAt: first.expiresAt + 60_000 };
      a.connectionStore.put(renewed);
      await until(async () => (await a.connectionStore.get(first.id))?.expiresAt === renewed.expiresAt, 5_000, 'renewed');
      expect(await a.connectionStore.ofUser(first.user)).toEqual([renewed]);
    });
  });

  describe(`RedisPresenceStore (${topology})`, () => {
    it('joins, lists, counts and leaves across two stores', async () => {
      const a = await startNode(target(), `pa-${topology}`);
      const b = await startNode(target(), `pb-${topology}`);
      const topic = `room-${topology}-${sequence++}`;
      expect(await a.presenceStore.join(topic, member('alice', 'c1'))).toBe(true);
      expect(await b.presenceStore.join(topic, member('bob', 'c2'))).toBe(true);
      expect(ids(await a.presenceStore.members(topic))).toEqual(['c1', 'c2']);
      expect(await b.presenceStore.members(topic)).toContainEqual(member('alice', 'c1'));
      expect(await b.presenceStore.count(topic)).toBe(2);
      a.presenceStore.leave(topic, 'c1');
      await until(async () => (await b.presenceStore.count(topic)) === 1, 5_000, 'left');
      expect(await b.presenceStore.members(topic)).toEqual([member('bob', 'c2')]);
    });

    it('refuses a join past maxMembers, and lets a member already there join again', async () => {
      const a = await startNode(target(), `pc-${topology}`);
      const b = await startNode(target(), `pd-${topology}`);
      const topic = `capped-${topology}-${sequence++}`;
      expect(await a.presenceStore.join(topic, member('alice', 'c1'), 2)).toBe(true);
      expect(await b.presenceStore.join(topic, member('bob', 'c2'), 2)).toBe(true);
      expect(await b.presenceStore.join(topic, member('carol', 'c3'), 2)).toBe(false);
      expect(await a.presenceStore.join(topic, member('alice', 'c1'), 2)).toBe(true);
      expect(await a.presenceStore.count(topic)).toBe(2);
    });

    it('never passes the cap under concurrent joins from two stores', async () => {
      const a = await startNode(target(), `pe-${topology}`);
      const b = await startNode(target(), `pf-${topology}`);
      const topic = `race-${topology}-${sequence++}`;
      const joins = Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b).presenceStore.join(topic, member(`u${i}`, `c${i}`), 7));
      const results = await Promise.all(joins);
      expect(results.filter(Boolean)).toHaveLength(7);
      expect(await a.presenceStore.count(topic)).toBe(7);
    });
  });
}

describe('the node lease', () => {
  it('drops a node killed -9 from every read within the lease, and a live node sweeps its keys', async () => {
    const watcher = await startNode(redis.url, 'watcher');
    const user = `dana-${sequence++}`;
    const records = [record(user, 'doomed'), record(user, 'doomed')];
    const topic = `lobby-${sequence++}`;
    const child = await holderProcess('doomed', records, [[topic, member(user, records[0]?.id as string)]]);
    await until(async () => (await watcher.connectionStore.ofUser(user)).length === 2, 5_000, 'listed');
    expect(await watcher.presenceStore.count(topic)).toBe(1);
    expect(await watcher.connectionStore.countsByNode()).toMatchObject({ doomed: 2 });
    child.kill('SIGKILL');
    await once(child, 'exit');
    // The documented bound is the lease; three of them leave room for a slow machine's polling.
    await until(async () => (await watcher.connectionStore.ofUser(user)).length === 0, LEASE_MS * 3, 'gone from reads within the bound');
    expect(await watcher.connectionStore.get(records[0]?.id as string)).toBeUndefined();
    expect(await watcher.presenceStore.members(topic)).toEqual([]);
    expect(await watcher.connectionStore.countsByNode()).not.toHaveProperty('doomed');
    const raw = new Redis(redis.url);
    try {
      const swept = async () =>
        (await raw.exists(`authsocket:cu:${user}`, `authsocket:pt:${topic}`, ...records.map((entry) => `authsocket:ci:${entry.id}`))) === 0 &&
        !(await raw.zrange('authsocket:leases', '0', '-1')).some((lease) => lease.startsWith('doomed@'));
      await until(swept, 10_000, 'swept: the entries, then the lease');
      expect(await raw.keys('authsocket:?l:doomed@*')).toEqual([]);
    } finally {
      raw.disconnect();
    }
  });

  it('rewrites what it holds once it finds its lease lost', async () => {
    const user = `erin-${sequence++}`;
    const held = [record(user, 'comeback'), record(user, 'comeback')];
    const node = await startNode(redis.url, 'comeback', held);
    await until(async () => (await node.connectionStore.ofUser(user)).length === 2, 5_000, 'listed');
    const raw = new Redis(redis.url);
    try {
      // What an outage longer than the lease leaves: the lease and the entries gone.
      await raw.del('authsocket:leases', `authsocket:cu:${user}`, ...held.map((entry) => `authsocket:ci:${entry.id}`));
      // Its own lease missing, the node cannot answer for its entries: 503, not an empty list.
      await expect(node.connectionStore.ofUser(user)).rejects.toBeInstanceOf(StoreUnavailableError);
      await until(async () => (await node.connectionStore.ofUser(user).catch(() => [])).length === 2, LEASE_MS * 5, 'rewritten');
      expect(ids(await node.connectionStore.ofUser(user))).toEqual(ids(held));
      expect(await node.connectionStore.get(held[1]?.id as string)).toEqual(held[1]);
    } finally {
      raw.disconnect();
    }
  });

  it('repairs a delete lost in an outage shorter than the lease: a new lease, the rewrite, the old lease retired', async () => {
    const proxy = await TcpProxy.start(redis.port);
    try {
      const user = `gus-${sequence++}`;
      const kept = record(user, 'flaky');
      const closed = record(user, 'flaky');
      const held = [kept, closed];
      const flaky = await startNode(proxy.url, 'flaky', held);
      const watcher = await startNode(redis.url, 'watcher-3');
      await until(async () => (await watcher.connectionStore.ofUser(user)).length === 2, 5_000, 'listed');
      proxy.cut();
      await until(() => flaky.status !== 'ready', 5_000, 'the flaky node sees Redis down');
      // The connection closes while Redis is unreachable: its delete cannot be sent.
      held.pop();
      flaky.connectionStore.delete(closed.id, user);
      // Lost, not just late: Redis still lists it, under a lease that is still live.
      expect(ids(await watcher.connectionStore.ofUser(user))).toEqual(ids([kept, closed]));
      proxy.heal();
      await until(async () => ids(await watcher.connectionStore.ofUser(user)).join() === kept.id, 10_000, 'the lost delete repaired');
      expect(await watcher.connectionStore.get(closed.id)).toBeUndefined();
      expect(await watcher.connectionStore.get(kept.id)).toEqual(kept);
    } finally {
      await proxy.close();
    }
  });

  it('hides what an earlier process of the same node id left once the node starts again', async () => {
    const user = `fay-${sequence++}`;
    const stale = record(user, 'restarted');
    const child = await holderProcess('restarted', [stale], []);
    const watcher = await startNode(redis.url, 'watcher-2');
    await until(async () => (await watcher.connectionStore.ofUser(user)).length === 1, 5_000, 'listed');
    child.kill('SIGKILL');
    await once(child, 'exit');
    const fresh = record(user, 'restarted');
    await startNode(redis.url, 'restarted', [fresh]);
    await until(async () => ids(await watcher.connectionStore.ofUser(user)).join() === fresh.id, LEASE_MS * 3, 'only the new one');
  });

  it('answers StoreUnavailableError when Redis does not answer', async () => {
    const server = await RedisServer.start();
    try {
      const node = await startNode(server.url, 'lonely');
      await server.stop();
      await expect(node.connectionStore.ofUser('anyone')).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(node.presenceStore.members('anything')).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      await server.stop();
    }
  });

  it('refuses a lease shorter than 300 ms or longer than a day', () => {
    expect(() => createRedisEngine(redis.url, { leaseMs: 299 })).toThrow(ConfigError);
    expect(() => createRedisEngine(redis.url, { leaseMs: 299 })).toThrow("invalid option 'leaseMs': must be at least 300, got 299");
    expect(() => createRedisEngine(redis.url, { leaseMs: 1.5 })).toThrow('expected a positive integer, got 1.5');
    expect(() => createRedisEngine(redis.url, { leaseMs: 86_400_001 })).toThrow("invalid option 'leaseMs': must be at most 86400000 (one day), got 86400001");
  });
});
