import { verifySignature } from '@authsocket/proxy';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisServer } from '../../redis/test/redis-server.js';
import { startServer, type TestServer, TestSocket } from '../../server/test/helpers.js';
import { createStreamForwarder, type StreamForwarder } from '../src/index.js';
import { FORWARD_SECRET } from './helpers.js';

/** The forwarding handler inside a real gateway, over real sockets, against a real redis-server. */

let redis: RedisServer;
let client: Redis;
let server: TestServer | undefined;
let forwarder: StreamForwarder | undefined;
const sockets: TestSocket[] = [];
let streamNo = 0;

beforeAll(async () => {
  redis = await RedisServer.start();
  client = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  client.on('error', () => undefined);
});

afterAll(async () => {
  client.disconnect();
  await redis.stop();
});

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await server?.close();
  await forwarder?.close();
  server = undefined;
  forwarder = undefined;
});

async function start(options: Partial<Parameters<typeof createStreamForwarder>[0]> = {}, perMessageAuth = false) {
  const stream = `test:inbox:${++streamNo}`;
  forwarder = createStreamForwarder({ redis: redis.url, stream, secret: FORWARD_SECRET, nodeId: 'node-a', forwardClaims: ['role'], ...options });
  server = await startServer({ handler: forwarder, perMessageAuth });
  const socket = await TestSocket.open(server.wsUrl);
  sockets.push(socket);
  return { stream, socket, target: server };
}

describe('createStreamForwarder', () => {
  it('acks only after XADD, with the entry id, and the entry is the signed identity envelope', async () => {
    const { stream, socket, target } = await start();
    socket.send({ type: 'auth', token: await target.token('alice', { claims: { role: 'admin', secret: 'no' } }) });
    await socket.next('auth_ok');
    socket.send({ type: 'message', id: '1', data: { text: 'hello' } });
    const ack = await socket.next('ack');
    const entries = (await client.xrange(stream, '-', '+')) as [string, string[]][];
    expect(entries).toHaveLength(1);
    const [id, fields] = entries[0] as [string, string[]];
    expect(ack).toEqual({ type: 'ack', id: '1', data: { entry: id } });
    expect(fields[0]).toBe('envelope');
    expect(fields[2]).toBe('sig');
    const body = fields[1] as string;
    expect(verifySignature(FORWARD_SECRET, fields[3], body)).toMatchObject({ ok: true });
    expect(verifySignature('another-secret-that-is-32-bytes-long!!', fields[3], body)).toEqual({ ok: false, reason: 'mismatch' });
    const envelope = JSON.parse(body);
    expect(envelope).toMatchObject({ event: 'message', v: 1, data: { text: 'hello' } });
    expect(envelope.identity).toMatchObject({ user: 'alice', claims: { role: 'admin' }, node: 'node-a' });
    expect(envelope.identity.claims.secret).toBeUndefined();
    expect(envelope.identity.token).toBeUndefined();
    expect(typeof envelope.identity.connection).toBe('string');
    expect(envelope.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('stores a resend with the same data.key once, and acks it with the first entry id', async () => {
    const { stream, socket, target } = await start();
    socket.send({ type: 'auth', token: await target.token('alice') });
    await socket.next('auth_ok');
    socket.send({ type: 'message', id: '1', data: { key: 'k-1', text: 'once' } });
    socket.send({ type: 'message', id: '2', data: { key: 'k-1', text: 'once' } });
    socket.send({ type: 'message', id: '3', data: { key: 'k-2', text: 'other' } });
    const acks = await socket.collect('ack', 3);
    const byId = Object.fromEntries(acks.map((ack) => [ack.id, ack.data]));
    expect(byId['2']).toEqual({ entry: (byId['1'] as { entry: string }).entry, duplicate: true });
    expect(byId['3']).not.toEqual(byId['1']);
    expect(await client.xlen(stream)).toBe(2);
    // Another user's identical key is another message.
    const bob = await TestSocket.open(target.wsUrl);
    sockets.push(bob);
    bob.send({ type: 'auth', token: await target.token('bob') });
    await bob.next('auth_ok');
    bob.send({ type: 'message', id: '1', data: { key: 'k-1' } });
    expect((await bob.next('ack')).data).not.toHaveProperty('duplicate');
    expect(await client.xlen(stream)).toBe(3);
    // A bad key is a bad request, not stored.
    socket.send({ type: 'message', id: '4', data: { key: 42 } });
    expect(await socket.next('error')).toMatchObject({ id: '4', code: 'bad_request' });
    expect(await client.xlen(stream)).toBe(3);
  });

  it('trims the stream to about maxLength', async () => {
    const { stream, socket, target } = await start({ maxLength: 10 });
    socket.send({ type: 'auth', token: await target.token('alice') });
    await socket.next('auth_ok');
    for (let i = 0; i < 300; i++) socket.send({ type: 'message', id: String(i), data: i });
    await socket.collect('ack', 300);
    const length = await client.xlen(stream);
    expect(length).toBeLessThan(300);
    expect(length).toBeGreaterThanOrEqual(10);
  });

  it('carries the per-message token in per-message-auth mode', async () => {
    const { stream, socket, target } = await start({}, true);
    const token = await target.token('alice');
    socket.send({ type: 'auth', token });
    await socket.next('auth_ok');
    socket.send({ type: 'message', id: '1', data: 'x', token });
    await socket.next('ack');
    const entries = (await client.xrange(stream, '-', '+')) as [string, string[]][];
    expect(JSON.parse(entries[0]?.[1][1] as string).identity.token).toBe(token);
  });

  it("answers unavailable (temporary) and acks nothing when Redis is down, then stores again once it is back", async () => {
    const { stream, socket, target } = await start({ commandTimeoutMs: 500 });
    socket.send({ type: 'auth', token: await target.token('alice') });
    await socket.next('auth_ok');
    await redis.kill();
    try {
      socket.send({ type: 'message', id: 'down', data: 1 });
      expect(await socket.next('error')).toEqual({ type: 'error', id: 'down', code: 'unavailable', message: 'queue unavailable', temporary: true });
      expect(socket.frames.some((frame) => frame.type === 'ack')).toBe(false);
    } finally {
      await redis.restart();
    }
    const deadline = Date.now() + 10_000;
    let ack;
    for (let attempt = 0; Date.now() < deadline && ack === undefined; attempt++) {
      socket.send({ type: 'message', id: `up-${attempt}`, data: 2 });
      await new Promise((resolve) => setTimeout(resolve, 200));
      ack = socket.frames.find((frame) => frame.type === 'ack');
    }
    expect(ack).toBeDefined();
    expect(await client.xlen(stream)).toBe(1);
  });

  it('refuses bad options by name', () => {
    expect(() => createStreamForwarder({ redis: redis.url, secret: 'short', nodeId: 'n' })).toThrow(/'secret'.*32 bytes/);
    expect(() => createStreamForwarder({ redis: 'http://x', secret: FORWARD_SECRET, nodeId: 'n' })).toThrow(/'redis'/);
    expect(() => createStreamForwarder({ redis: redis.url, secret: FORWARD_SECRET, nodeId: 'n', maxLength: 0 })).toThrow(/'maxLength'/);
    expect(() => createStreamForwarder({ redis: redis.url, secret: FORWARD_SECRET, nodeId: '' })).toThrow(/'nodeId'/);
  });
});
