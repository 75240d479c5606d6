import type { StreamPosition } from '@authsocket/protocol';
import { MemoryBroker, type Publication, StoreUnavailableError } from '@authsocket/server';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRedisEngine, type RedisEngineOptions } from '../src/index.js';
import { EngineNodes, RedisServer, until } from './helpers.js';

let redis: RedisServer;
const nodes = new EngineNodes();

beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  await redis.stop();
});
afterEach(() => nodes.closeAll());

/** A node: its own engine (own connections); its `count` is what its publication handler returns. */
const node = (options: RedisEngineOptions = {}) =>
  nodes.start(redis.url, { commandTimeoutMs: 1_000, maxReconnectDelayMs: 100, ...options });

const publication = (user: string, data: unknown): Publication => ({
  to: { user },
  data: JSON.stringify(data),
  stream: `user:${user}`,
});

let streamCounter = 0;
/** A stream name no other test used. */
const fresh = (base = 'user') => `${base}${++streamCounter}-${Date.now()}`;

async function flushall(): Promise<void> {
  const raw = new Redis(redis.url);
  try {
    await raw.flushall();
  } finally {
    raw.disconnect();
  }
}

describe('RedisBroker delivery', () => {
  it('hands every node a stream’s publications in offset order, once each, from 3 publishing nodes', async () => {
    const nodes = await Promise.all([node(), node(), node()]);
    const user = fresh();
    const total = 90;
    // Interleaved and concurrent: every node has publications in flight at once.
    await Promise.all(
      Array.from({ length: total }, (_, i) => nodes[i % 3]!.engine.broker.publish(publication(user, i))),
    );
    for (const { received } of nodes) {
      await until(() => received.length >= total, 5_000, 'all publications');
      const offsets = received.map((p) => p.offset);
      expect(offsets).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      expect(new Set(received.map((p) => p.epoch)).size).toBe(1);
      expect(received.every((p) => p.stream === `user:${user}` && 'user' in p.to && p.to.user === user)).toBe(true);
      // Data is carried byte for byte: each offset's data is one of the published values, all of them once.
      expect(received.map((p) => JSON.parse(p.data) as number).sort((a, b) => a - b)).toEqual(
        Array.from({ length: total }, (_, i) => i),
      );
    }
    // Every node saw the same data at the same offset.
    expect(nodes[1]!.received.map((p) => p.data)).toEqual(nodes[0]!.received.map((p) => p.data));
    expect(nodes[2]!.received.map((p) => p.data)).toEqual(nodes[0]!.received.map((p) => p.data));
  });

  it('resolves publish after this node delivered, with the count its handler returned', async () => {
    const [a, b] = await Promise.all([node(), node()]);
    a!.count = 7;
    b!.count = 3;
    const user = fresh();
    const seen = a!.received.length;
    expect(await a!.engine.broker.publish(publication(user, 'x'))).toBe(7);
    // Resolved only once this node's handler ran.
    expect(a!.received.length).toBe(seen + 1);
    expect(await b!.engine.broker.publish(publication(user, 'y'))).toBe(3);
  });

  it('keeps data exactly as serialized, unicode and newlines included', async () => {
    const [a, b] = await Promise.all([node(), node()]);
    const user = fresh();
    const data = JSON.stringify({ text: 'line one\nline two — ünïcødé 🚀', nested: { n: 1.5e-7, list: [null, true] } });
    await a!.engine.broker.publish({ to: { user }, data, stream: `user:${user}` });
    await until(() => b!.received.length > 0);
    expect(b!.received[0]!.data).toBe(data);
    const read = await b!.engine.broker.read(`user:${user}`, { epoch: b!.received[0]!.epoch as string, offset: 0 });
    expect(read.publications[0]!.data).toBe(data);
  });

  it('delivers broadcasts and topic publications without history to every node', async () => {
    const [a, b, c] = await Promise.all([node(), node(), node()]);
    await b!.engine.broker.publish({ to: { everyone: true }, data: '"all"' });
    await b!.engine.broker.publish({ to: { topic: 'lobby' }, data: '"no history"' });
    for (const n of [a!, b!, c!]) {
      await until(() => n.received.length === 2);
      expect(n.received).toEqual([
        { to: { everyone: true }, data: '"all"' },
        { to: { topic: 'lobby' }, data: '"no history"' },
      ]);
    }
  });

  it('carries the kind of join and leave publications to every node, without history', async () => {
    const [a, b] = await Promise.all([node(), node()]);
    const member = JSON.stringify({ user: 'alice', connection: 'c-1', info: 'Alice' });
    await a!.engine.broker.publish({ to: { topic: 'room' }, data: member, kind: 'join' });
    await a!.engine.broker.publish({ to: { topic: 'room' }, data: member, kind: 'leave' });
    for (const n of [a!, b!]) {
      await until(() => n.received.length === 2);
      expect(n.received).toEqual([
        { to: { topic: 'room' }, data: member, kind: 'join' },
        { to: { topic: 'room' }, data: member, kind: 'leave' },
      ]);
    }
    // Nothing was appended to the topic's stream.
    expect((await a!.engine.broker.position('topic:room')).offset).toBe(0);
    await expect(a!.engine.broker.publish({ to: { topic: 'room' }, data: member, kind: 'join', stream: 'topic:room' })).rejects.toThrow(
      'a join / leave publication has no stream',
    );
  });

  it('sends control messages to the other nodes only', async () => {
    const [a, b, c] = await Promise.all([node(), node(), node()]);
    await a!.engine.broker.control({ revoke: 'mallory' });
    await until(() => b!.controls.length === 1 && c!.controls.length === 1);
    expect(b!.controls).toEqual([{ revoke: 'mallory' }]);
    expect(c!.controls).toEqual([{ revoke: 'mallory' }]);
    // A's own message came back too: a publication after it proves it was skipped, not late.
    await a!.engine.broker.publish({ to: { everyone: true }, data: '1' });
    expect(a!.controls).toEqual([]);
  });
});

describe('RedisBroker history', () => {
  it('reports a fresh stream at offset 0 with one epoch for every node', async () => {
    const [a, b] = await Promise.all([node(), node()]);
    const stream = `user:${fresh()}`;
    const first = await a!.engine.broker.position(stream);
    expect(first.offset).toBe(0);
    expect(first.epoch).toMatch(/^[\w-]{12}$/);
    expect(await b!.engine.broker.position(stream)).toEqual(first);
    await b!.engine.broker.publish({ to: { user: 'x' }, data: '1', stream });
    expect(await a!.engine.broker.position(stream)).toEqual({ epoch: first.epoch, offset: 1 });
    // A client holding the fresh position recovers the message published after it.
    const read = await a!.engine.broker.read(stream, first);
    expect(read).toMatchObject({ recovered: true, position: { epoch: first.epoch, offset: 1 } });
    expect(read.publications.map((p) => p.offset)).toEqual([1]);
  });

  it('answers read exactly as MemoryBroker does, trimmed by count', async () => {
    const maxEntries = 5;
    const { engine } = await node({ history: { maxEntries } });
    const memory = new MemoryBroker({ maxEntries });
    await memory.start({ publication: () => 0, control: () => {} });
    const stream = `topic:${fresh('t')}`;
    for (let i = 1; i <= 12; i++) {
      const p: Publication = { to: { topic: 'x' }, data: String(i), stream };
      await engine.broker.publish(p);
      await memory.publish(p);
      const redisEpoch = (await engine.broker.position(stream)).epoch;
      const memoryEpoch = (await memory.position(stream)).epoch;
      // Every requested position, from before the history to past its end, plus a wrong epoch.
      for (let after = -1; after <= i + 1; after++) {
        const fromRedis = await engine.broker.read(stream, { epoch: redisEpoch, offset: after });
        const fromMemory = await memory.read(stream, { epoch: memoryEpoch, offset: after });
        const summary = (read: typeof fromRedis) => ({
          recovered: read.recovered,
          offset: read.position.offset,
          offsets: read.publications.map((p) => p.offset),
          data: read.publications.map((p) => p.data),
        });
        expect(summary(fromRedis), `after ${after} of ${i}`).toEqual(summary(fromMemory));
      }
      const wrong = await engine.broker.read(stream, { epoch: 'another-epoch', offset: 0 });
      expect(wrong).toEqual({ position: { epoch: redisEpoch, offset: i }, recovered: false, publications: [] });
    }
  });

  it('drops publications older than maxAgeMs from history', async () => {
    const { engine } = await node({ history: { maxAgeMs: 1_000 } });
    const stream = `user:${fresh()}`;
    await engine.broker.publish({ to: { user: 'x' }, data: '1', stream });
    await engine.broker.publish({ to: { user: 'x' }, data: '2', stream });
    const { epoch } = await engine.broker.position(stream);
    expect((await engine.broker.read(stream, { epoch, offset: 0 })).recovered).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await engine.broker.publish({ to: { user: 'x' }, data: '3', stream });
    // 1 and 2 are gone: from before them nothing is replayed; from 2 on, 3 is.
    expect(await engine.broker.read(stream, { epoch, offset: 0 })).toEqual({
      position: { epoch, offset: 3 },
      recovered: false,
      publications: [],
    });
    const from2 = await engine.broker.read(stream, { epoch, offset: 2 });
    expect(from2.recovered).toBe(true);
    expect(from2.publications.map((p) => p.data)).toEqual(['3']);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    // Everything aged out: a client that saw it all still recovers (nothing), an older one does not.
    expect(await engine.broker.read(stream, { epoch, offset: 3 })).toEqual({
      position: { epoch, offset: 3 },
      recovered: true,
      publications: [],
    });
    expect((await engine.broker.read(stream, { epoch, offset: 2 })).recovered).toBe(false);
  });

  it('starts a new epoch after FLUSHALL, so old positions are not recovered', async () => {
    const [a, b] = await Promise.all([node(), node()]);
    const stream = `user:${fresh()}`;
    for (let i = 0; i < 3; i++) await a!.engine.broker.publish({ to: { user: 'x' }, data: String(i), stream });
    const before = await a!.engine.broker.position(stream);
    expect(before.offset).toBe(3);
    await flushall();
    const after = await b!.engine.broker.read(stream, before);
    expect(after.recovered).toBe(false);
    expect(after.publications).toEqual([]);
    expect(after.position.epoch).not.toBe(before.epoch);
    expect(after.position.offset).toBe(0);
    // The reported position is real: the next publication continues from it, in the new epoch.
    await a!.engine.broker.publish({ to: { user: 'x' }, data: '"new"', stream });
    const resumed = await b!.engine.broker.read(stream, after.position);
    expect(resumed.recovered).toBe(true);
    expect(resumed.publications).toMatchObject([{ offset: 1, epoch: after.position.epoch, data: '"new"' }]);
    await until(() => b!.received.some((p) => p.epoch === after.position.epoch));
    expect(b!.received.at(-1)).toMatchObject({ offset: 1, epoch: after.position.epoch });
  });

  it('treats a position that is not a whole number as unrecoverable', async () => {
    const { engine } = await node();
    const stream = `user:${fresh()}`;
    await engine.broker.publish({ to: { user: 'x' }, data: '1', stream });
    const { epoch } = await engine.broker.position(stream);
    for (const offset of [0.5, Number.NaN, -3]) {
      const read = await engine.broker.read(stream, { epoch, offset } as StreamPosition);
      expect(read).toEqual({ position: { epoch, offset: 1 }, recovered: false, publications: [] });
    }
  });

  it('keeps streams of different prefixes apart', async () => {
    const [a, b] = await Promise.all([node({ keyPrefix: 'one:' }), node({ keyPrefix: 'two:' })]);
    const stream = `user:${fresh()}`;
    await a!.engine.broker.publish({ to: { user: 'x' }, data: '1', stream });
    expect((await b!.engine.broker.position(stream)).offset).toBe(0);
    await b!.engine.broker.publish({ to: { everyone: true }, data: '2' });
    // Redis sent b's broadcast before a's next one: had it leaked, a would have it first.
    await a!.engine.broker.publish({ to: { everyone: true }, data: '3' });
    expect(a!.received.map((p) => p.data)).toEqual(['1', '3']);
    expect(b!.received.map((p) => p.data)).toEqual(['2']);
  });
});

describe('RedisBroker health', () => {
  it('is ready once connected and subscribed, and closed after close()', async () => {
    const engine = nodes.track(createRedisEngine(redis.url, { maxReconnectDelayMs: 100 }));
    const statuses: string[] = [];
    engine.broker.on('status', (status) => statuses.push(status));
    expect(engine.status).toBe('connecting');
    await engine.ready();
    expect(engine.status).toBe('ready');
    await engine.close();
    expect(statuses).toEqual(['ready', 'closed']);
    await expect(engine.broker.publish({ to: { everyone: true }, data: '1' })).rejects.toBeInstanceOf(StoreUnavailableError);
  });
});
