import { randomBytes } from 'node:crypto';
import { OutcomeUnknownError, StoreUnavailableError, ticketKey } from '@authsocket/server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EngineNodes, RedisServer, TcpProxy, until } from './helpers.js';

let redis: RedisServer;
const nodes = new EngineNodes();

beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  redis.signal('SIGCONT');
  await redis.stop();
});
afterEach(() => nodes.closeAll());

const node = (url = redis.url) => nodes.start(url, { commandTimeoutMs: 500, maxReconnectDelayMs: 100 });

const record = () => {
  const now = Date.now();
  return { user: 'alice', claims: { sub: 'alice' }, tokenExpiresAt: now + 60_000, issuedAt: now, expiresAt: now + 30_000 };
};
const newKey = () => ticketKey(randomBytes(32).toString('base64url'));

/** Runs `operation`, expecting StoreUnavailableError; returns how long it took. */
async function failsClosed(operation: () => Promise<unknown>): Promise<number> {
  const started = Date.now();
  await expect(operation()).rejects.toBeInstanceOf(StoreUnavailableError);
  return Date.now() - started;
}

describe('Redis going away', () => {
  it('fails fast while Redis is down, then recovers by itself: reconnected, resubscribed, same brokers', async () => {
    const [a, b] = await Promise.all([node(), node()]);
    const stream = 'user:failover';
    await a!.engine.broker.publish({ to: { user: 'failover' }, data: '"before"', stream });
    const before = await b!.engine.broker.position(stream);

    await redis.kill();
    await until(() => a!.engine.status === 'reconnecting' && b!.engine.status === 'reconnecting', 3_000, 'reconnecting');
    const { broker, ticketStore, revocationStore } = a!.engine;
    const took = [
      await failsClosed(() => ticketStore.put(newKey(), record(), 1_000)),
      await failsClosed(() => ticketStore.take(newKey(), true)),
      await failsClosed(() => revocationStore.revoke('mallory', Date.now())),
      await failsClosed(() => revocationStore.revokedAt('mallory')),
      await failsClosed(() => broker.publish({ to: { user: 'failover' }, data: '"lost"', stream })),
      await failsClosed(() => broker.publish({ to: { everyone: true }, data: '"lost"' })),
      await failsClosed(() => broker.read(stream, before)),
      await failsClosed(() => broker.position(stream)),
      await failsClosed(() => broker.control({ revoke: 'mallory' })),
    ];
    // Known down: every operation fails at once instead of waiting for a timeout.
    for (const ms of took) expect(ms).toBeLessThan(250);

    await redis.restart();
    await Promise.all([a!.engine.ready(5_000), b!.engine.ready(5_000)]);
    expect(a!.statuses).toEqual(['ready', 'reconnecting', 'ready']);

    // Resubscribed: a publication from A reaches B again. Redis lost its data: a new epoch.
    expect(await a!.engine.broker.publish({ to: { user: 'failover' }, data: '"after"', stream })).toBe(1);
    await until(() => b!.received.some((p) => p.data === '"after"'), 3_000, 'delivery after restart');
    const after = b!.received.find((p) => p.data === '"after"');
    expect(after).toMatchObject({ offset: 1 });
    expect(after?.epoch).not.toBe(before.epoch);
    expect((await b!.engine.broker.read(stream, before)).recovered).toBe(false);
    // And the other way, plus the stores.
    await b!.engine.broker.publish({ to: { everyone: true }, data: '"hello"' });
    await until(() => a!.received.some((p) => p.data === '"hello"'), 3_000, 'broadcast after restart');
    const key = newKey();
    await a!.engine.ticketStore.put(key, record(), 10_000);
    expect(await b!.engine.ticketStore.take(key, true)).toMatchObject({ user: 'alice' });
  });

  it('delivers from history, in order, what one node missed while only its own link to Redis was down', async () => {
    const proxy = await TcpProxy.start(redis.port);
    try {
      const a = await node();
      const b = await node(proxy.url);
      const stream = 'user:partitioned';
      const publish = (data: number) => a.engine.broker.publish({ to: { user: 'partitioned' }, data: String(data), stream });
      await publish(1);
      await publish(2);
      await until(() => b.received.length === 2, 3_000, 'before the partition');
      proxy.cut();
      await until(() => b.engine.status === 'reconnecting', 3_000, 'b reconnecting');
      // A and Redis carry on without B.
      for (let i = 3; i <= 6; i++) await publish(i);
      proxy.heal();
      await b.engine.ready(5_000);
      await publish(7);
      await publish(8);
      await until(() => b.received.length >= 8, 3_000, 'repaired deliveries');
      expect(b.received.map((p) => p.offset)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      expect(b.received.map((p) => p.data)).toEqual(['1', '2', '3', '4', '5', '6', '7', '8']);
    } finally {
      await proxy.close();
    }
  });

  it('settles every publication in flight when Redis dies under it', async () => {
    const [a] = await Promise.all([node(), node()]);
    const inFlight = Array.from({ length: 200 }, (_, i) =>
      a!.engine.broker.publish({ to: { user: 'busy' }, data: String(i), stream: 'user:busy' }).then(
        () => 'delivered',
        (error: unknown) =>
          error instanceof StoreUnavailableError
            ? 'unavailable'
            : error instanceof OutcomeUnknownError
              ? 'unknown'
              : `unexpected ${String(error)}`,
      ),
    );
    await redis.kill();
    const started = Date.now();
    const outcomes = await Promise.all(inFlight);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(outcomes.filter((outcome) => !['delivered', 'unavailable', 'unknown'].includes(outcome))).toEqual([]);
    await redis.restart();
    await a!.engine.ready(5_000);
  });

  it('bounds every command by commandTimeoutMs when Redis stops answering', async () => {
    const { engine } = await node();
    redis.signal('SIGSTOP');
    try {
      const took = await failsClosed(() => engine.ticketStore.take(newKey(), true));
      expect(took).toBeGreaterThanOrEqual(450);
      expect(took).toBeLessThan(1_500);
      // Sent, then no reply: it may have run, and the caller is told so.
      await expect(engine.broker.publish({ to: { user: 'x' }, data: '1', stream: 'user:x' })).rejects.toBeInstanceOf(
        OutcomeUnknownError,
      );
    } finally {
      redis.signal('SIGCONT');
    }
    // The connection itself was fine: it keeps working once Redis answers again.
    await until(async () => (await engine.ticketStore.take(newKey(), true).then(() => true, () => false)) || undefined, 3_000);
    await engine.ready(3_000);
  });
});
