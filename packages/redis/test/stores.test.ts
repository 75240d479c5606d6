import { createHash, randomBytes } from 'node:crypto';
import { StoreUnavailableError, type TicketRecord, ticketKey } from '@authsocket/server';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRedisEngine, type RedisEngine, type RedisEngineOptions } from '../src/index.js';
import { EngineNodes, RedisServer } from './helpers.js';

let redis: RedisServer;
const engines = new EngineNodes();

beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  await redis.stop();
});
afterEach(() => engines.closeAll());

async function engine(options: RedisEngineOptions = {}, url = redis.url): Promise<RedisEngine> {
  const created = engines.track(createRedisEngine(url, { commandTimeoutMs: 1_000, maxReconnectDelayMs: 100, ...options }));
  await created.ready();
  return created;
}

function record(user = 'alice', now = Date.now()): TicketRecord {
  return { user, claims: { sub: user, scope: 'chat' }, tokenExpiresAt: now + 60_000, issuedAt: now, expiresAt: now + 30_000 };
}

const newKey = () => ticketKey(randomBytes(32).toString('base64url'));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('RedisTicketStore', () => {
  it('stores a record under the hashed key, namespaced, with the TTL as PX', async () => {
    const { ticketStore } = await engine({ keyPrefix: 'app1:' });
    const key = newKey();
    const stored = record();
    await ticketStore.put(key, stored, 30_000);
    const raw = new Redis(redis.url);
    try {
      expect(JSON.parse((await raw.get(`app1:t:${key}`)) as string)).toEqual(stored);
      const ttl = await raw.pttl(`app1:t:${key}`);
      expect(ttl).toBeGreaterThan(29_000);
      expect(ttl).toBeLessThanOrEqual(30_000);
    } finally {
      raw.disconnect();
    }
  });

  it('gives the record once when consuming, and keeps it when not', async () => {
    const { ticketStore } = await engine();
    const key = newKey();
    const stored = record();
    await ticketStore.put(key, stored, 30_000);
    expect(await ticketStore.take(key, false)).toEqual(stored);
    expect(await ticketStore.take(key, false)).toEqual(stored);
    expect(await ticketStore.take(key, true)).toEqual(stored);
    expect(await ticketStore.take(key, true)).toBeUndefined();
    expect(await ticketStore.take(newKey(), true)).toBeUndefined();
  });

  it('hands a ticket to exactly one of 50 concurrent redemptions on 3 nodes', async () => {
    const nodes = await Promise.all([engine(), engine(), engine()]);
    for (let round = 0; round < 5; round++) {
      const key = newKey();
      await nodes[0]!.ticketStore.put(key, record(), 30_000);
      const takes = await Promise.all(
        Array.from({ length: 50 }, (_, i) => nodes[i % 3]!.ticketStore.take(key, true)),
      );
      expect(takes.filter((taken) => taken !== undefined)).toHaveLength(1);
    }
  });

  it('forgets a ticket after its TTL', async () => {
    const { ticketStore } = await engine();
    const key = newKey();
    await ticketStore.put(key, record(), 300);
    expect(await ticketStore.take(key, false)).toBeDefined();
    await sleep(450);
    expect(await ticketStore.take(key, true)).toBeUndefined();
  });

  it('refuses a value it did not write (fail closed)', async () => {
    const { ticketStore } = await engine();
    const key = newKey();
    const raw = new Redis(redis.url);
    try {
      await raw.set(`authsocket:t:${key}`, '{"user":42}', 'PX', 10_000);
      await raw.set(`authsocket:t:${key}x`, 'not json', 'PX', 10_000);
    } finally {
      raw.disconnect();
    }
    expect(await ticketStore.take(key, true)).toBeUndefined();
    expect(await ticketStore.take(`${key}x`, true)).toBeUndefined();
  });

  it('keeps nothing redeemable: the stored key is the SHA-256 of the ticket', () => {
    const ticket = randomBytes(32).toString('base64url');
    expect(ticketKey(ticket)).toBe(createHash('sha256').update(ticket).digest('base64url'));
    expect(ticketKey(ticket)).not.toContain(ticket);
  });
});

describe('RedisRevocationStore', () => {
  it('remembers when a user was revoked, on every node', async () => {
    const [a, b] = await Promise.all([engine(), engine()]);
    expect(await b!.revocationStore.revokedAt('mallory')).toBeUndefined();
    await a!.revocationStore.revoke('mallory', 1_234_567);
    expect(await b!.revocationStore.revokedAt('mallory')).toBe(1_234_567);
    await b!.revocationStore.revoke('mallory', 2_000_000);
    expect(await a!.revocationStore.revokedAt('mallory')).toBe(2_000_000);
    expect(await a!.revocationStore.revokedAt('alice')).toBeUndefined();
  });

  it('forgets a revocation after revocationTtlMs', async () => {
    const { revocationStore } = await engine({ revocationTtlMs: 300 });
    await revocationStore.revoke('mallory', Date.now());
    expect(await revocationStore.revokedAt('mallory')).toBeDefined();
    await sleep(450);
    expect(await revocationStore.revokedAt('mallory')).toBeUndefined();
  });
});

describe('createRedisEngine', () => {
  it('rejects invalid options by name', () => {
    const cases: Array<[RedisEngineOptions, string]> = [
      [{ keyPrefix: 'a{b}:' }, 'keyPrefix'],
      [{ shards: 0 }, 'shards'],
      [{ history: { maxEntries: 0 } }, 'history.maxEntries'],
      [{ history: { maxAgeMs: 10_000 }, streamTtlMs: 5_000 }, 'streamTtlMs'],
      [{ commandTimeoutMs: -1 }, 'commandTimeoutMs'],
    ];
    for (const [options, option] of cases) {
      expect(() => createRedisEngine(redis.url, options)).toThrow(expect.objectContaining({ option }));
    }
    expect(() => createRedisEngine('http://127.0.0.1:1')).toThrow(expect.objectContaining({ option: 'url' }));
  });

  it('fails closed quickly when Redis cannot be reached', async () => {
    const unreachable = engines.track(createRedisEngine('redis://127.0.0.1:1', { commandTimeoutMs: 500, maxReconnectDelayMs: 100 }));
    const started = Date.now();
    await expect(unreachable.ticketStore.put(newKey(), record(), 1_000)).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(unreachable.ticketStore.take(newKey(), true)).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(unreachable.revocationStore.revokedAt('alice')).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(unreachable.status).not.toBe('ready');
  });
});
