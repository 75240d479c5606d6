import { afterEach, describe, expect, it } from 'vitest';
import { MemoryBroker } from '../src/index.js';
import { refusal, startServer, TestSocket, type TestServer } from './helpers.js';

let server: TestServer;
afterEach(async () => {
  await server?.close();
});

describe('sendToUser', () => {
  it("reaches every connection of the user and no one else's", async () => {
    server = await startServer();
    const a1 = await TestSocket.authenticated(server, 'alice');
    const a2 = await TestSocket.withTicket(server.wsUrl, await server.ticket('alice'));
    await a2.next('auth_ok');
    const bob = await TestSocket.authenticated(server, 'bob');
    expect(server.gateway.connectionCount('alice')).toBe(2);
    expect(await server.gateway.sendToUser('alice', { n: 1 })).toBe(2);
    expect(await a1.next('message')).toMatchObject({ type: 'message', data: { n: 1 } });
    expect(await a2.next('message')).toMatchObject({ type: 'message', data: { n: 1 } });
    await bob.settle();
    expect(bob.frames.some((frame) => frame.type === 'message')).toBe(false);
    expect(await server.gateway.sendToUser('nobody', 1)).toBe(0);
    for (const socket of [a1, a2, bob]) socket.close();
  });
});

describe('topics', () => {
  it('delivers publishes to subscribers only, with acks, subject to authorize', async () => {
    server = await startServer({
      authorize: (user, action, topic) => topic !== 'admin' || (user === 'root' && action === 'subscribe'),
    });
    const alice = await TestSocket.authenticated(server, 'alice');
    const bob = await TestSocket.authenticated(server, 'bob');
    const carol = await TestSocket.authenticated(server, 'carol');
    alice.send({ type: 'subscribe', topic: 'room', id: 's1' });
    bob.send({ type: 'subscribe', topic: 'room', id: 's2' });
    expect(await alice.next('ack')).toMatchObject({ type: 'ack', id: 's1', streams: { 'topic:room': { offset: 0 } } });
    await bob.next('ack');
    carol.send({ type: 'publish', topic: 'room', data: 'hi', id: 'p1' });
    expect(await carol.next('ack')).toEqual({ type: 'ack', id: 'p1' });
    expect(await alice.next('message')).toMatchObject({ type: 'message', topic: 'room', data: 'hi' });
    expect(await bob.next('message')).toMatchObject({ type: 'message', topic: 'room', data: 'hi' });
    await carol.settle();
    expect(carol.frames.some((frame) => frame.type === 'message')).toBe(false);

    alice.send({ type: 'subscribe', topic: 'admin', id: 's3' });
    expect(await alice.next('error')).toEqual({
      type: 'error',
      id: 's3',
      code: 'forbidden',
      message: "not allowed to subscribe to 'admin'",
    });
    bob.send({ type: 'unsubscribe', topic: 'room', id: 'u1' });
    await bob.next('ack', bob.frames.length);
    expect(await server.gateway.publish('room', 'second')).toBe(1);
    for (const socket of [alice, bob, carol]) socket.close();
  });
});

describe('logout (seed 000 WEBSOCKET_LOGOUT)', () => {
  it('stops pushes at once, answers logged_out and keeps the socket open for a new auth', async () => {
    server = await startServer();
    const socket = await TestSocket.authenticated(server, 'alice');
    socket.send({ type: 'subscribe', topic: 'room', id: 's' });
    await socket.next('ack');
    socket.send({ type: 'logout' });
    await socket.next('logged_out');
    expect(await server.gateway.sendToUser('alice', 'after logout')).toBe(0);
    expect(await server.gateway.publish('room', 'after logout')).toBe(0);
    expect(await server.gateway.broadcast('after logout')).toBe(0);
    await socket.settle();
    expect(socket.frames.some((frame) => frame.type === 'message')).toBe(false);

    socket.send({ type: 'auth', token: await server.token('bob') });
    expect((await socket.next('auth_ok', socket.frames.length)).user).toBe('bob');
    expect(await server.gateway.sendToUser('bob', 'hello bob')).toBe(1);
    expect(await socket.next('message')).toMatchObject({ type: 'message', data: 'hello bob' });
    socket.close();
  });

  it('closes with 1000 when closeOnLogout is set', async () => {
    server = await startServer({ closeOnLogout: true });
    const socket = await TestSocket.authenticated(server, 'alice');
    socket.send({ type: 'logout' });
    await socket.next('logged_out');
    expect(await socket.closed).toEqual({ code: 1000, reason: 'logged out' });
  });
});

describe('revokeUser', () => {
  it("closes all the user's connections with 4403 and refuses their outstanding tickets and tokens", async () => {
    server = await startServer();
    const first = await TestSocket.authenticated(server, 'alice');
    const second = await TestSocket.authenticated(server, 'alice');
    const bob = await TestSocket.authenticated(server, 'bob');
    const outstanding = await server.ticket('alice');
    const oldToken = await server.token('alice');
    expect(await server.gateway.revokeUser('alice')).toBe(2);
    expect(await first.closed).toEqual({ code: 4403, reason: 'revoked' });
    expect(await second.closed).toEqual({ code: 4403, reason: 'revoked' });
    expect((await refusal(TestSocket.withTicket(server.wsUrl, outstanding))).status).toBe(401);
    const response = await fetch(`${server.origin}/auth/ticket`, {
      method: 'POST',
      headers: { authorization: `Bearer ${oldToken}` },
    });
    expect(response.status).toBe(401);
    const again = await TestSocket.open(server.wsUrl);
    again.send({ type: 'auth', token: oldToken });
    expect(await again.closed).toEqual({ code: 4403, reason: 'revoked' });

    // A login within the clock tolerance (5 s) after the revocation is still covered: the IdP's
    // clock may be ahead of this node's, so its `iat` could name a moment before the revocation.
    server.clock.advance(5_000);
    const tooSoon = await TestSocket.open(server.wsUrl);
    tooSoon.send({ type: 'auth', token: await server.token('alice') });
    expect(await tooSoon.closed).toEqual({ code: 4403, reason: 'revoked' });
    // Past the tolerance, a fresh login works again.
    server.clock.advance(1_000);
    const fresh = await TestSocket.authenticated(server, 'alice');
    expect(await server.gateway.sendToUser('bob', 'undisturbed')).toBe(1);
    expect(await bob.next('message')).toMatchObject({ type: 'message', data: 'undisturbed' });
    fresh.close();
    bob.close();
  });
});

describe('events and hooks', () => {
  it('reports authentication, failures and closes to listeners', async () => {
    server = await startServer();
    const seen: string[] = [];
    server.gateway.on('authenticated', ({ connection, method }) => seen.push(`auth:${connection.user}:${method}`));
    server.gateway.on('authFailed', ({ stage, reason }) => seen.push(`fail:${stage}:${reason}`));
    server.gateway.on('close', ({ code }) => seen.push(`close:${code}`));
    const good = await TestSocket.authenticated(server, 'alice');
    const bad = await TestSocket.open(server.wsUrl);
    bad.send({ type: 'auth', token: await server.token('alice', { expiresIn: -60 }) });
    await bad.closed;
    good.close();
    await good.closed;
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(seen).toEqual(['auth:alice:message', 'fail:auth:expired', 'close:4401', 'close:1005']);
  });

  it('answers error {code: rejected} when onMessage throws, and keeps the connection', async () => {
    server = await startServer({
      onMessage: ({ data }) => {
        if (data === 'bad') throw new Error('database exploded: password=hunter2');
      },
    });
    const socket = await TestSocket.authenticated(server, 'alice');
    socket.send({ type: 'message', data: 'bad', id: 'm1' });
    expect(await socket.next('error')).toEqual({ type: 'error', id: 'm1', code: 'rejected', message: 'message rejected' });
    socket.send({ type: 'message', data: 'good', id: 'm2' });
    expect(await socket.next('ack')).toEqual({ type: 'ack', id: 'm2' });
    socket.close();
  });
});

describe('idempotency keys', () => {
  it('publishes a retried request once, per audience, within the window', async () => {
    server = await startServer();
    const alice = await TestSocket.authenticated(server, 'alice');
    const bob = await TestSocket.authenticated(server, 'bob');
    expect(await server.gateway.sendToUser('alice', 'once', { idempotencyKey: 'order-7' })).toBe(1);
    expect(await server.gateway.sendToUser('alice', 'once', { idempotencyKey: 'order-7' })).toBe(0);
    // The same key for another audience is another publication.
    expect(await server.gateway.sendToUser('bob', 'for bob', { idempotencyKey: 'order-7' })).toBe(1);
    expect(await server.gateway.sendToUser('alice', 'next', { idempotencyKey: 'order-8' })).toBe(1);
    await alice.collect('message', 2);
    await alice.settle();
    expect(alice.frames.flatMap((frame) => (frame.type === 'message' ? [[frame.data, frame.offset]] : []))).toEqual([
      ['once', 1],
      ['next', 2],
    ]);
    expect(await bob.next('message')).toMatchObject({ data: 'for bob' });
    alice.close();
    bob.close();
  });

  it('forgets a key after the window', async () => {
    const now = { value: 1_000 };
    const broker = new MemoryBroker({ idempotencyWindowMs: 5_000, now: () => now.value });
    const seen: string[] = [];
    await broker.start({ publication: (publication) => seen.push(publication.data), control: () => {} });
    const publication = { to: { everyone: true }, data: '"hi"' } as const;
    await broker.publish(publication, { idempotencyKey: 'k' });
    now.value += 4_999;
    await broker.publish(publication, { idempotencyKey: 'k' });
    now.value += 2;
    await broker.publish(publication, { idempotencyKey: 'k' });
    expect(seen).toEqual(['"hi"', '"hi"']);
  });
});
