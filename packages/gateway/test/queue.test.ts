import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExampleBackend } from './example-backend.js';
import { API_KEY, buildCli, cleanEnv } from './helpers.js';
import { Resources, until } from './multinode/harness/cleanup.js';
import { ProtocolClient } from './multinode/harness/clients.js';
import { GatewayNode } from './multinode/harness/gateway-node.js';
import { freePorts, RedisServer, redisCli } from './multinode/harness/redis.js';

/**
 * The queue path end to end, every part a real process: one `authsocket serve --forward-stream`
 * node on Redis, three examples/moderating-worker processes in one consumer group (one killed -9
 * mid-run), clients speaking authsocket.v1. Every acknowledged message is processed (published on
 * the chat topic, or refused to its sender's connection alone).
 */

const FORWARD_SECRET = 'forward-test-secret-of-at-least-32-bytes!';
const WORKER = fileURLToPath(new URL('../../../examples/moderating-worker/worker.mjs', import.meta.url));
const STREAM = 'authsocket:inbox';
const resources = new Resources();
let redis: RedisServer;
let node: GatewayNode;

interface WorkerProcess {
  readonly child: ChildProcess;
  readonly output: { text: string };
}

async function startWorker(consumer: string): Promise<WorkerProcess> {
  const child = spawn(process.execPath, [WORKER], {
    env: cleanEnv({ REDIS_URL: redis.url, AUTHSOCKET_FORWARD_SECRET: FORWARD_SECRET, CONSUMER: consumer, CLAIM_IDLE_MS: '500', DELAY_MS: '50' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = { text: '' };
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output.text += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output.text += chunk));
  resources.add(child, async (process) => {
    if (process.exitCode !== null || process.signalCode !== null) return;
    const exited = once(process, 'exit');
    process.kill('SIGKILL');
    await exited;
  });
  await until(`worker ${consumer} ready`, () => output.text.includes('moderating worker ready') || (child.exitCode !== null && Promise.reject(new Error(output.text))), {
    timeoutMs: 15_000,
  });
  return { child, output };
}

beforeAll(async () => {
  buildCli();
  redis = resources.add(await RedisServer.start(), (server) => server.stop());
  node = resources.add(
    await GatewayNode.start({
      name: 'Q',
      redis: ['--redis-url', redis.url],
      args: ['--forward-stream', STREAM, '--forward-max-length', '100000'],
      env: { AUTHSOCKET_FORWARD_SECRET: FORWARD_SECRET },
    }),
    (gateway) => gateway.kill(),
  );
}, 60_000);

afterAll(() => resources.disposeAll());

const client = async (user: string) => resources.add(await ProtocolClient.authenticated(node.wsUrl, user), (socket) => socket.terminate());

type Payload = { type?: string; key?: string; from?: string; entry?: string };

describe('the queue path, through examples/moderating-worker', () => {
  it('processes every acknowledged message at least once with 3 workers, one killed -9 mid-run, and every reply reaches its connection', async () => {
    const workers = [await startWorker('w1'), await startWorker('w2'), await startWorker('w3')];
    const users = ['alice', 'bob', 'carol', 'dave'];
    const clients = await Promise.all(users.map(client));
    // A second socket of alice's: replies go to one connection, not to the user.
    const aliceElsewhere = await client('alice');
    for (const socket of clients) await socket.subscribe('chat:lobby');
    const N = 60;
    const sent = new Map<string, { user: string; refused: boolean }>();
    clients.forEach((socket, index) => {
      const user = users[index] as string;
      for (let i = 0; i < N; i++) {
        const key = `${user}-${i}`;
        const refused = i % 10 === 3;
        sent.set(key, { user, refused });
        socket.send({ type: 'message', id: key, data: { key, text: refused ? `darn, message ${i}` : `hello ${i}` } });
      }
    });
    // Kill one worker once some work is done, while more is pending.
    const done = () => clients.reduce((sum, socket) => sum + socket.messages().length, 0);
    await until('a first share processed', () => done() >= 40, { timeoutMs: 20_000 });
    workers[0]?.child.kill('SIGKILL');
    // It held entries it had read and not acknowledged: the others must claim them (XAUTOCLAIM).
    const orphaned = await redisCli(redis.port, 'XPENDING', STREAM, 'moderators', '-', '+', '1000', 'w1');
    expect(orphaned.split('\n').filter((line) => /^\d+-\d+$/.test(line)).length).toBeGreaterThan(0);

    // Every message acknowledged, with the entry it was stored as.
    const acks = new Map<string, string>();
    await until(
      'every message acknowledged',
      () => {
        for (const socket of clients) {
          for (const frame of socket.frames) {
            if (frame.type === 'ack' && frame.id in Object.fromEntries(sent)) acks.set(frame.id, (frame.data as { entry: string }).entry);
            if (frame.type === 'error') throw new Error(`refused: ${JSON.stringify(frame)}`);
          }
        }
        return acks.size === sent.size;
      },
      { timeoutMs: 20_000 },
    );
    expect([...acks.values()].every((entry) => /^\d+-\d+$/.test(entry))).toBe(true);
    expect(new Set(acks.values()).size).toBe(sent.size);

    const accepted = [...sent].filter(([, { refused }]) => !refused).map(([key]) => key);
    const refused = [...sent].filter(([, { refused }]) => refused).map(([key]) => key);
    await until(
      'every accepted message on the topic for every subscriber, every refusal at its sender',
      () =>
        clients.every((socket) => {
          const keys = new Set(socket.messages('topic:chat:lobby').map((m) => (m.data as Payload).key));
          return accepted.every((key) => keys.has(key));
        }) &&
        clients.every((socket, index) => {
          const mine = refused.filter((key) => sent.get(key)?.user === users[index]);
          const replies = new Set(socket.messages().filter((m) => (m.data as Payload).type === 'chat/refused').map((m) => (m.data as Payload).key));
          return mine.every((key) => replies.has(key));
        }),
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    for (const socket of clients) {
      const published = socket.messages('topic:chat:lobby').map((m) => m.data as Payload);
      // Names come from the verified envelope; each entry on the topic is the one acked for its key.
      for (const message of published) {
        expect(message.from).toBe(sent.get(message.key as string)?.user);
        expect(message.entry).toBe(acks.get(message.key as string));
      }
      // In the topic's offset order, with no gaps (history keeps clients exactly-once and ordered).
      const offsets = socket.messages('topic:chat:lobby').map((m) => m.offset);
      expect(offsets).toEqual(Array.from({ length: offsets.length }, (_, i) => (offsets[0] as number) + i));
      // A re-run of a killed worker's entry publishes with the same idempotency key: once on the topic.
      expect(published.length).toBe(accepted.length);
    }
    // Refusals went to the sending connection only.
    expect(aliceElsewhere.messages().filter((m) => (m.data as Payload).type === 'chat/refused')).toEqual([]);
    expect(workers[0]?.child.signalCode).toBe('SIGKILL');
    // Nothing left pending in the group, nothing dead-lettered.
    await until('nothing pending', async () => (await redisCli(redis.port, 'XPENDING', STREAM, 'moderators')).startsWith('0'), { timeoutMs: 10_000 });
    expect(await redisCli(redis.port, 'XLEN', `${STREAM}:dead`)).toBe('0');
    // The gateway counted what it forwarded.
    const metrics = await (await fetch(`${node.url}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`authsocket_forwarded_messages_total\\{duplicate="false"\\} ${sent.size}\\b`));
    expect(metrics).toMatch(/authsocket_forward_stream_length \d+/);
  }, 90_000);

  it('acks a resend with the same key with the first entry, and Redis down answers unavailable without an ack', async () => {
    const alice = await client('alice');
    alice.send({ type: 'message', id: 'a', data: { key: 'once-only', text: 'hello' } });
    alice.send({ type: 'message', id: 'b', data: { key: 'once-only', text: 'hello' } });
    const first = await alice.next((frame) => frame.type === 'ack' && frame.id === 'a');
    const second = await alice.next((frame) => frame.type === 'ack' && frame.id === 'b');
    expect(second).toMatchObject({ data: { entry: (first as { data: { entry: string } }).data.entry, duplicate: true } });

    await redis.kill();
    try {
      alice.send({ type: 'message', id: 'down', data: { text: 'lost?' } });
      expect(await alice.next((frame) => frame.type === 'error' && frame.id === 'down', 10_000)).toMatchObject({ code: 'unavailable', temporary: true });
      expect(alice.frames.some((frame) => frame.type === 'ack' && frame.id === 'down')).toBe(false);
    } finally {
      await redis.restart();
    }
  }, 30_000);

  it("works beside the HTTP proxy: messages go to the stream, the proxy's rpc to the backend", async () => {
    const [port] = (await freePorts(1)) as [number];
    const secret = 'proxy-test-secret-of-at-least-32-bytes!!';
    const backend = resources.add(await ExampleBackend.start(port, { secret, apiKey: API_KEY, gatewayUrl: node.url }), (child) => child.kill());
    const both = resources.add(
      await GatewayNode.start({
        name: 'QP',
        redis: ['--redis-url', redis.url],
        args: ['--forward-stream', 'authsocket:both', ...backend.flags(['rpc'])],
        env: { AUTHSOCKET_FORWARD_SECRET: FORWARD_SECRET, AUTHSOCKET_PROXY_SECRET: secret },
      }),
      (gateway) => gateway.kill(),
    );
    const alice = resources.add(await ProtocolClient.authenticated(both.wsUrl, 'alice'), (socket) => socket.terminate());
    alice.send({ type: 'rpc', id: 'r', method: 'time' });
    expect(await alice.next((frame) => frame.type === 'result' && frame.id === 'r')).toMatchObject({ data: { for: 'alice' } });
    alice.send({ type: 'message', id: 'm', data: { text: 'to the stream' } });
    const ack = (await alice.next((frame) => frame.type === 'ack' && frame.id === 'm')) as { data: { entry: string } };
    const stored = await redisCli(redis.port, 'XRANGE', 'authsocket:both', '-', '+');
    expect(stored).toContain(ack.data.entry);
    expect(stored).toContain('to the stream');
  }, 30_000);
});
