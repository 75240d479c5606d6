import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisServer } from '../../redis/test/redis-server.js';
import { startServer, type TestServer, TestSocket } from '../../server/test/helpers.js';
import { createStreamForwarder, createWorker, type StreamForwarder, type Worker, type WorkerOptions } from '../src/index.js';
import { partitionOf } from '../src/entry.js';
import { enqueue, FORWARD_SECRET, until } from './helpers.js';

/** Ordered mode: partitions by connection, one owner per partition, retries in place, resume after kill -9. */

let redis: RedisServer;
let client: Redis;
let server: TestServer | undefined;
let forwarder: StreamForwarder | undefined;
const workers: Worker[] = [];
const sockets: TestSocket[] = [];
const children: ChildProcess[] = [];
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
  for (const socket of sockets.splice(0)) socket.close();
  await Promise.all(workers.splice(0).map((worker) => worker.close()));
  await server?.close();
  await forwarder?.close();
  server = undefined;
  forwarder = undefined;
});

async function worker(options: Partial<WorkerOptions> & Pick<WorkerOptions, 'stream' | 'consumer' | 'handler'>): Promise<Worker> {
  const started = createWorker({ redis: redis.url, verify: { secret: FORWARD_SECRET }, blockMs: 100, ...options });
  workers.push(started);
  await started.start();
  return started;
}

describe('partitions (ordered mode)', () => {
  it("keeps each connection's messages in one partition and handles them in order, failures retried in place", async () => {
    const stream = `test:ordered:${++streamNo}`;
    forwarder = createStreamForwarder({ redis: redis.url, stream, secret: FORWARD_SECRET, nodeId: 'n', partitions: 4 });
    server = await startServer({ handler: forwarder });
    const handled = new Map<string, number[]>();
    const failedOnce = new Set<string>();
    const handler: WorkerOptions['handler'] = async ({ data, connectionId, messageId }) => {
      const { n } = data as { n: number };
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 3));
      if (n % 5 === 2 && !failedOnce.has(messageId)) {
        failedOnce.add(messageId);
        throw new Error('transient');
      }
      handled.set(connectionId, [...(handled.get(connectionId) ?? []), n]);
    };
    await worker({ stream, consumer: 'a', handler, partitions: { count: 4, owned: [0, 1] }, retryDelayMs: 10 });
    await worker({ stream, consumer: 'b', handler, partitions: { count: 4, owned: [2, 3] }, retryDelayMs: 10 });
    const connections = await Promise.all(
      Array.from({ length: 6 }, async (_, index) => {
        const socket = await TestSocket.open((server as TestServer).wsUrl);
        sockets.push(socket);
        socket.send({ type: 'auth', token: await (server as TestServer).token(`user${index}`) });
        await socket.next('auth_ok');
        return socket;
      }),
    );
    const N = 30;
    for (const socket of connections) for (let n = 0; n < N; n++) socket.send({ type: 'message', id: String(n), data: { n } });
    const acks = await Promise.all(connections.map((socket) => socket.collect('ack', N)));
    // The ack names the partition stream (entry ids are unique per stream only), one per connection.
    for (const list of acks) {
      const streams = new Set(list.map((ack) => (ack.data as { stream: string }).stream));
      expect(streams.size).toBe(1);
      expect([...streams][0]).toMatch(new RegExp(`^${stream}:[0-3]$`));
    }
    await until('all handled', () => handled.size === 6 && [...handled.values()].every((list) => list.length === N), 20_000);
    for (const list of handled.values()) expect(list).toEqual(Array.from({ length: N }, (_, n) => n));
    expect(failedOnce.size).toBe(6 * 6);
    // Each connection's entries are in its partition's stream, none in another.
    const lengths = await Promise.all([0, 1, 2, 3].map((index) => client.xlen(`${stream}:${index}`)));
    const expected = [0, 0, 0, 0];
    for (const id of handled.keys()) expected[partitionOf(id, 4)] = (expected[partitionOf(id, 4)] ?? 0) + N;
    expect(lengths).toEqual(expected);
    expect(await forwarder.length()).toBe(6 * N);
  });

  it('resumes its own pending entries in order when restarted with the same name after kill -9', async () => {
    const stream = `test:ordered:${++streamNo}`;
    const script = fileURLToPath(new URL('./fixtures/worker-process.mjs', import.meta.url));
    const child = spawn(process.execPath, [script], {
      env: { ...process.env, REDIS_URL: redis.url, STREAM: stream, CONSUMER: 'owner', FORWARD_SECRET, PARTITION_COUNT: '2', PARTITIONS_OWNED: '0,1' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    await until('worker process ready', () => child.stdout?.read()?.toString().includes('ready'), 10_000);
    // The first entry keeps the process busy; the others wait behind it in the same partition.
    for (let n = 0; n < 5; n++) await enqueue(client, `${stream}:0`, { data: { n, sleepMs: n === 0 ? 60_000 : 0 } });
    await until('the first started', async () => (await client.llen(`${stream}:0:started`)) === 1 || (await client.llen(`${stream}:started`)) === 1);
    child.kill('SIGKILL');
    await until('gone', () => child.signalCode !== null);
    const order: [number, number][] = [];
    await worker({
      stream,
      consumer: 'owner',
      partitions: { count: 2, owned: [0, 1] },
      handler: ({ data, attempt }) => void order.push([(data as { n: number }).n, attempt]),
    });
    await until('all five', () => order.length === 5, 10_000);
    expect(order.map(([n]) => n)).toEqual([0, 1, 2, 3, 4]);
    expect(order[0]?.[1]).toBeGreaterThanOrEqual(2);
    await until('nothing pending', async () => ((await client.xpending(`${stream}:0`, 'workers')) as [number])[0] === 0);
  });

  it('refuses bad partitions by name', () => {
    const base = { redis: redis.url, consumer: 'c', handler: () => undefined, verify: { secret: FORWARD_SECRET } };
    expect(() => createWorker({ ...base, partitions: { count: 2, owned: [2] } })).toThrow(/'partitions.owned'.*0 to 1/);
    expect(() => createWorker({ ...base, partitions: { count: 2, owned: [] } })).toThrow(/'partitions.owned'/);
    expect(() => createWorker({ ...base, partitions: { count: 2, owned: [1, 1] } })).toThrow(/twice/);
    expect(() => createWorker({ ...base, partitions: { count: 0, owned: [0] } })).toThrow(/'partitions.count'/);
    expect(() => createStreamForwarder({ redis: redis.url, secret: FORWARD_SECRET, nodeId: 'n', partitions: 0 })).toThrow(/'partitions'/);
  });
});
