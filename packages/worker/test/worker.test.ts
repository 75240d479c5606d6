import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createRedisEngine, type RedisEngine } from '@authsocket/redis';
import type { Publication } from '@authsocket/server';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisServer } from '../../redis/test/redis-server.js';
import { SECRET, signToken } from '../../server/test/helpers.js';
import { createWorker, type JobContext, type Worker, type WorkerOptions } from '../src/index.js';
import { enqueue, FORWARD_SECRET, recordingLogger, until } from './helpers.js';

/** Workers against a real redis-server: group sharing, retries, dead letters, verification, a crashed process. */

let redis: RedisServer;
let client: Redis;
const workers: Worker[] = [];
const children: ChildProcess[] = [];
const engines: RedisEngine[] = [];
let streamNo = 0;

beforeAll(async () => {
  redis = await RedisServer.start();
  client = new Redis(redis.url);
});

afterAll(async () => {
  client.disconnect();
  await redis.stop();
});

afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await Promise.all(workers.splice(0).map((worker) => worker.close()));
  await Promise.all(engines.splice(0).map((engine) => engine.close()));
});

function nextStream(): string {
  return `test:jobs:${++streamNo}`;
}

async function worker(stream: string, consumer: string, handler: WorkerOptions['handler'], options: Partial<WorkerOptions> = {}): Promise<Worker> {
  const started = createWorker({ redis: redis.url, stream, consumer, handler, verify: { secret: FORWARD_SECRET }, blockMs: 100, ...options });
  workers.push(started);
  await started.start();
  return started;
}

function spawnWorker(stream: string, consumer: string, claimIdleMs: number): Promise<ChildProcess> {
  const script = fileURLToPath(new URL('./fixtures/worker-process.mjs', import.meta.url));
  const child = spawn(process.execPath, [script], {
    env: { ...process.env, REDIS_URL: redis.url, STREAM: stream, CONSUMER: consumer, FORWARD_SECRET, CLAIM_IDLE_MS: String(claimIdleMs) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker ${consumer} did not start`)), 10_000);
    child.once('exit', (code) => reject(new Error(`worker ${consumer} exited with ${code}`)));
    child.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
  });
}

async function deadLetters(stream: string): Promise<Record<string, string>[]> {
  const entries = (await client.xrange(`${stream}:dead`, '-', '+')) as [string, string[]][];
  return entries.map(([, fields]) => Object.fromEntries(Array.from({ length: fields.length / 2 }, (_, i) => [fields[2 * i], fields[2 * i + 1]])));
}

describe('createWorker', () => {
  it('shares one group between two workers: every entry handled once, acknowledged, by either', async () => {
    const stream = nextStream();
    const seen: [string, number][] = [];
    const record = (name: string) => async ({ data }: JobContext) => {
      await new Promise((resolve) => setTimeout(resolve, 2));
      seen.push([name, (data as { n: number }).n]);
    };
    await worker(stream, 'w1', record('w1'), { concurrency: 4 });
    await worker(stream, 'w2', record('w2'), { concurrency: 4 });
    for (let n = 0; n < 200; n++) await enqueue(client, stream, { data: { n } });
    await until('200 handled', () => seen.length >= 200);
    await until('all acknowledged', async () => ((await client.xpending(stream, 'workers')) as [number])[0] === 0);
    expect(seen.map(([, n]) => n).sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, n) => n));
    const names = new Set(seen.map(([name]) => name));
    expect(names).toEqual(new Set(['w1', 'w2']));
  });

  it('handles what was enqueued before the first worker started (the group starts at the stream start)', async () => {
    const stream = nextStream();
    for (let n = 0; n < 5; n++) await enqueue(client, stream, { data: { n } });
    const seen: number[] = [];
    await worker(stream, 'late', ({ data }) => void seen.push((data as { n: number }).n));
    await until('5 handled', () => seen.length === 5);
    expect(seen.sort()).toEqual([0, 1, 2, 3, 4]);
  });

  it('dead-letters an entry after maxAttempts failures while the others keep flowing', async () => {
    const stream = nextStream();
    const attempts: number[] = [];
    const done: number[] = [];
    const dead: string[] = [];
    const w = await worker(
      stream,
      'w1',
      ({ data, attempt }) => {
        const { n } = data as { n: number };
        if (n === 3) {
          attempts.push(attempt);
          throw new Error('poison');
        }
        done.push(n);
      },
      { maxAttempts: 3, claimIdleMs: 150, claimIntervalMs: 50 },
    );
    w.on('dead', ({ entryId }) => dead.push(entryId));
    const ids: string[] = [];
    for (let n = 0; n < 10; n++) ids.push(await enqueue(client, stream, { data: { n } }));
    await until('the others handled', () => done.length === 9);
    await until('poison dead-lettered', () => dead.length === 1);
    expect(attempts).toEqual([1, 2, 3]);
    expect(dead).toEqual([ids[3]]);
    const [letter] = await deadLetters(stream);
    expect(letter).toMatchObject({ entry: ids[3], attempts: '3', reason: 'failed 3 times: poison', consumer: 'w1' });
    expect(JSON.parse(letter?.envelope as string).data).toEqual({ n: 3 });
    await until('nothing pending', async () => ((await client.xpending(stream, 'workers')) as [number])[0] === 0);
    // More keep flowing after it.
    await enqueue(client, stream, { data: { n: 10 } });
    await until('one more', () => done.includes(10));
  });

  it('refuses a forged, unsigned or stale entry without running the handler', async () => {
    const stream = nextStream();
    const ran: number[] = [];
    const refused: string[] = [];
    const w = await worker(stream, 'w1', ({ data }) => void ran.push((data as { n: number }).n), {
      verify: { secret: FORWARD_SECRET, maxAgeMs: 60_000 },
      concurrency: 1,
    });
    w.on('dead', ({ reason }) => refused.push(reason));
    await enqueue(client, stream, { data: { n: 1 }, secret: 'a-forger-secret-that-is-32-bytes-long!!' });
    await enqueue(client, stream, { data: { n: 2 }, at: Date.now() - 120_000 });
    await client.xadd(stream, '*', 'envelope', JSON.stringify({ event: 'message', data: { n: 3 } }));
    await enqueue(client, stream, { data: { n: 4 } });
    await until('four decided', () => refused.length + ran.length === 4);
    expect(ran).toEqual([4]);
    expect(refused).toEqual(['signature_mismatch', 'stale', 'signature_missing']);
    expect((await deadLetters(stream)).map((letter) => letter.reason)).toEqual(['signature_mismatch', 'stale', 'signature_missing']);
  });

  it('refuses an expired per-message token at once (no retry), and never logs the token', async () => {
    const stream = nextStream();
    const { lines, logger } = recordingLogger();
    const ran: string[] = [];
    const refused: [string, number][] = [];
    const w = await worker(stream, 'w1', ({ user, claims }) => void ran.push(`${user}:${String(claims.plan)}`), {
      verify: { secret: FORWARD_SECRET, jwt: { secret: SECRET } },
      logger,
      // One at a time, so the refusals come in the order the entries were stored.
      concurrency: 1,
    });
    w.on('dead', ({ reason, attempt }) => refused.push([reason, attempt]));
    const expired = await signToken({ sub: 'alice', now: Date.now() - 600_000, expiresIn: 60 });
    const valid = await signToken({ sub: 'alice', claims: { plan: 'pro' } });
    const bobs = await signToken({ sub: 'bob' });
    await enqueue(client, stream, { user: 'alice', token: expired, data: 1 });
    await enqueue(client, stream, { user: 'alice', token: bobs, data: 2 });
    await enqueue(client, stream, { user: 'alice', data: 3 });
    await enqueue(client, stream, { user: 'alice', token: valid, data: 4 });
    await until('four decided', () => refused.length + ran.length === 4);
    expect(ran).toEqual(['alice:pro']);
    expect(refused).toEqual([
      ['token_expired', 1],
      ['token_user_mismatch', 1],
      ['token_missing', 1],
    ]);
    expect(lines.some((line) => line.includes('token_expired'))).toBe(true);
    for (const token of [expired, valid, bobs]) expect(lines.join('\n')).not.toContain(token);
    expect(lines.join('\n')).not.toContain(FORWARD_SECRET);
  });

  it('replies, publishes and sends to a user through the Redis broker, with history streams', async () => {
    const stream = nextStream();
    const observer = createRedisEngine(redis.url, { nodeId: 'observer' });
    engines.push(observer);
    const got: Publication[] = [];
    await observer.broker.start({ publication: (publication) => (got.push(publication), 0), control: () => undefined });
    await worker(stream, 'w1', async ({ reply, publish, sendToUser, user }) => {
      await reply({ ok: true });
      await publish('chat:lobby', { from: user });
      await sendToUser('bob', { hi: user });
    });
    await enqueue(client, stream, { connection: 'conn-1', data: 'x' });
    await until('three publications', () => got.length >= 3);
    const byAudience = Object.fromEntries(got.map((publication) => [JSON.stringify(publication.to), publication]));
    expect(byAudience['{"connection":"conn-1"}']).toMatchObject({ data: '{"ok":true}' });
    expect(byAudience['{"connection":"conn-1"}']?.stream).toBeUndefined();
    expect(byAudience['{"topic":"chat:lobby"}']).toMatchObject({ data: '{"from":"alice"}', stream: 'topic:chat:lobby', offset: 1 });
    expect(byAudience['{"user":"bob"}']).toMatchObject({ data: '{"hi":"alice"}', stream: 'user:bob', offset: 1 });
  });

  it("claims a worker process's entries with XAUTOCLAIM after it is killed -9 mid-handling", async () => {
    const stream = nextStream();
    const victim = await spawnWorker(stream, 'victim', 300);
    for (let n = 0; n < 5; n++) await enqueue(client, stream, { data: { n, sleepMs: 60_000 } });
    await until('victim started all 5', async () => (await client.llen(`${stream}:started`)) === 5);
    victim.kill('SIGKILL');
    await until('victim gone', () => victim.exitCode !== null || victim.signalCode !== null);
    // The survivor handles quickly what it claims: the sleep is only for the victim.
    const done: number[] = [];
    const attempts: number[] = [];
    await worker(stream, 'survivor', ({ data, attempt }) => {
      done.push((data as { n: number }).n);
      attempts.push(attempt);
    }, { claimIdleMs: 300, claimIntervalMs: 100 });
    await until('survivor handled all 5', () => done.length === 5, 15_000);
    expect(done.sort()).toEqual([0, 1, 2, 3, 4]);
    expect(attempts.every((attempt) => attempt === 2)).toBe(true);
    await until('nothing pending', async () => ((await client.xpending(stream, 'workers')) as [number])[0] === 0);
    expect(await client.llen(`${stream}:done`)).toBe(0);
  });

  it('close() finishes the handlers in flight and acknowledges them', async () => {
    const stream = nextStream();
    const done: number[] = [];
    const w = await worker(stream, 'w1', async ({ data }) => {
      await new Promise((resolve) => setTimeout(resolve, 300));
      done.push((data as { n: number }).n);
    });
    for (let n = 0; n < 3; n++) await enqueue(client, stream, { data: { n } });
    await until('in flight', () => w.inflight === 3);
    await w.close();
    expect(done.sort()).toEqual([0, 1, 2]);
    expect(((await client.xpending(stream, 'workers')) as [number])[0]).toBe(0);
  });

  it('start() rejects when Redis does not answer, and close() after it settles', async () => {
    const w = createWorker({ redis: 'redis://127.0.0.1:1', consumer: 'c', handler: () => undefined, verify: { secret: FORWARD_SECRET } });
    await expect(w.start()).rejects.toThrow();
    await w.close();
  });

  it('refuses bad options by name', () => {
    const base = { redis: redis.url, consumer: 'c', handler: () => undefined, verify: { secret: FORWARD_SECRET } };
    expect(() => createWorker({ ...base, redis: 'localhost:6379' })).toThrow(/'redis'/);
    expect(() => createWorker({ ...base, verify: { secret: 'short' } })).toThrow(/'verify.secret'/);
    expect(() => createWorker({ ...base, maxAttempts: 0 })).toThrow(/'maxAttempts'/);
    expect(() => createWorker({ ...base, consumer: '' })).toThrow(/'consumer'/);
    expect(() => createWorker({ ...base, verify: { secret: FORWARD_SECRET, jwt: { secret: 'short' } } })).toThrow(/'verify.jwt.secret'/);
    expect(() => createWorker({ ...base, deadLetterStream: 'authsocket:inbox' })).toThrow(/'deadLetterStream'/);
  });
});
