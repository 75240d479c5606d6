import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SUBPROTOCOL } from '@authsocket/protocol';
import { createGateway, type Gateway } from '@authsocket/server';
import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createRedisEngine, type RedisEngine } from '../src/index.js';
import { RedisServer, until } from './helpers.js';

/**
 * A backend replies to one connection by its id (the id its proxy's envelope carried), through any
 * node: two gateways on one real Redis, the socket on A, the calls on B.
 */

const SECRET = 'connections-test-secret-of-32-bytes-or-more';
let redis: RedisServer;
const nodes: { gateway: Gateway; server: http.Server; engine: RedisEngine; url: string; ids: string[] }[] = [];

beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  for (const { gateway, server, engine } of nodes.splice(0)) {
    await gateway.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await engine.close();
  }
});

async function node() {
  const engine = createRedisEngine(redis.url, { commandTimeoutMs: 1_000, maxReconnectDelayMs: 100 });
  const ids: string[] = [];
  const gateway = createGateway({
    jwt: { secret: SECRET },
    ...engine,
    handler: { onConnect: ({ connection }) => void ids.push(connection.id) },
  });
  const server = http.createServer(gateway.handleRequest);
  gateway.attach(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const entry = { gateway, server, engine, url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`, ids };
  nodes.push(entry);
  await until(() => engine.broker.status === 'ready', 5_000, 'broker ready');
  return entry;
}

async function client(url: string, user: string) {
  const socket = new WebSocket(url, [SUBPROTOCOL]);
  const frames: { type: string; data?: unknown }[] = [];
  socket.on('message', (raw) => frames.push(JSON.parse(String(raw)) as { type: string }));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => socket.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
  await new Promise((resolve) => socket.once('open', resolve));
  const iat = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(user).setIssuedAt(iat).setExpirationTime(iat + 300).sign(new TextEncoder().encode(SECRET));
  socket.send(JSON.stringify({ type: 'auth', token }));
  await until(() => frames.some((frame) => frame.type === 'auth_ok'), 5_000, 'auth_ok');
  return { socket, frames, closed };
}

describe('a connection by its id, across nodes', () => {
  it('gets a message sent through another node, and nobody else does; a guessed id reaches no one', async () => {
    const [a, b] = [await node(), await node()];
    const alice = await client(a.url, 'alice');
    const other = await client(a.url, 'alice');
    const [id] = a.ids;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(a.ids[1]).not.toBe(id);
    expect(await b.gateway.sendToConnection(id!, { reply: 42 })).toBe(0);
    await until(() => alice.frames.some((frame) => frame.type === 'message'), 5_000, 'the reply');
    expect(alice.frames.filter((frame) => frame.type === 'message').map((frame) => frame.data)).toEqual([{ reply: 42 }]);
    expect(await a.gateway.sendToConnection(crypto.randomUUID(), 'lost')).toBe(0);
    expect(await a.gateway.sendToConnection(id!, 'local')).toBe(1);
    await until(() => alice.frames.filter((frame) => frame.type === 'message').length === 2, 5_000, 'the local one');
    expect(other.frames.filter((frame) => frame.type === 'message')).toEqual([]);
    // One Idempotency-Key per audience: the same key to the other connection is another message.
    expect(await a.gateway.sendToConnection(a.ids[1]!, 'keyed', { idempotencyKey: 'k1' })).toBe(1);
    expect(await a.gateway.sendToConnection(id!, 'keyed', { idempotencyKey: 'k1' })).toBe(1);
    expect(await a.gateway.sendToConnection(id!, 'keyed', { idempotencyKey: 'k1' })).toBe(0);
  });

  it('is closed with the code and reason asked for through another node', async () => {
    const [a, b] = [await node(), await node()];
    const alice = await client(a.url, 'alice');
    const bob = await client(a.url, 'bob');
    expect(await b.gateway.closeConnection(a.ids[0]!, 4000, 'done here')).toBe(0);
    expect(await alice.closed).toEqual({ code: 4000, reason: 'done here' });
    expect(bob.socket.readyState).toBe(WebSocket.OPEN);
    expect(await a.gateway.closeConnection(a.ids[1]!, 1000, 'bye')).toBe(1);
    expect(await bob.closed).toEqual({ code: 1000, reason: 'bye' });
  });
});
