import { SUBPROTOCOL, TOKEN_PROTOCOL_PREFIX } from '@authsocket/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { refusal, startServer, TestSocket, type TestServer } from './helpers.js';

let server: TestServer;
afterEach(async () => {
  await server?.close();
});

describe('first-message auth', () => {
  it('authenticates with an auth frame and answers auth_ok with user and expiresAt', async () => {
    server = await startServer();
    const socket = await TestSocket.open(server.wsUrl);
    socket.send({ type: 'auth', token: await server.token('alice', { expiresIn: 120 }) });
    const ok = await socket.next('auth_ok');
    expect(ok).toMatchObject({ type: 'auth_ok', user: 'alice', expiresAt: Math.floor(server.clock.now() / 1000) * 1000 + 120_000 });
    expect(server.gateway.connectionCount('alice')).toBe(1);
    socket.close();
  });

  it('answers ping before authentication', async () => {
    server = await startServer();
    const socket = await TestSocket.open(server.wsUrl);
    socket.send({ type: 'ping', id: 'p1' });
    expect(await socket.next('pong')).toEqual({ type: 'pong', id: 'p1' });
    socket.close();
  });

  it.each([
    ['message', { type: 'message', data: 1 }],
    ['subscribe', { type: 'subscribe', topic: 'room' }],
    ['publish', { type: 'publish', topic: 'room', data: 1 }],
    ['logout', { type: 'logout' }],
  ])('closes 4401 on %s before auth', async (_name, frame) => {
    server = await startServer();
    const socket = await TestSocket.open(server.wsUrl);
    socket.send(frame);
    expect(await socket.closed).toEqual({ code: 4401, reason: 'authenticate first' });
  });

  it('closes 4408 when no auth arrives before the deadline', async () => {
    server = await startServer({ authTimeoutMs: 10_000 });
    const socket = await TestSocket.open(server.wsUrl);
    await socket.settle();
    server.clock.advance(9_999);
    await socket.settle();
    expect(socket.ws.readyState).toBe(socket.ws.OPEN);
    server.clock.advance(1);
    expect(await socket.closed).toEqual({ code: 4408, reason: 'authentication timed out' });
  });

  it('closes 4401 when the JWT step fails, without echoing the token', async () => {
    server = await startServer();
    const socket = await TestSocket.open(server.wsUrl);
    socket.send({ type: 'auth', token: 'eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl' });
    expect(await socket.closed).toEqual({ code: 4401, reason: 'invalid token' });
  });

  it('processes a frame sent right after auth only once auth has completed', async () => {
    server = await startServer({ onMessage: ({ connection, user, data }) => void connection.send({ user, data }) });
    const socket = await TestSocket.open(server.wsUrl);
    socket.send({ type: 'auth', token: await server.token('alice') });
    socket.send({ type: 'message', data: 'hello', id: 'm1' });
    expect(await socket.next('ack')).toEqual({ type: 'ack', id: 'm1' });
    expect(socket.frames.map((frame) => frame.type)).toEqual(['auth_ok', 'message', 'ack']);
    expect(socket.frames[1]).toMatchObject({ type: 'message', data: { user: 'alice', data: 'hello' } });
    socket.close();
  });
});

describe('two-layer mode (seed 001: ticket, then JWT first message)', () => {
  const twoLayer = { ticket: 'required', requireAuthMessage: true } as const;

  it('refuses the upgrade without a ticket', async () => {
    server = await startServer(twoLayer);
    expect((await refusal(TestSocket.open(server.wsUrl))).status).toBe(401);
  });

  it('delivers nothing after the ticket until the JWT step is done', async () => {
    server = await startServer(twoLayer);
    const socket = await TestSocket.withTicket(server.wsUrl, await server.ticket('alice'));
    expect(await server.gateway.sendToUser('alice', 'early')).toBe(0);
    expect(await server.gateway.broadcast('early')).toBe(0);
    await socket.settle();
    expect(socket.frames.filter((frame) => frame.type !== 'pong')).toEqual([]);

    socket.send({ type: 'auth', token: await server.token('alice') });
    await socket.next('auth_ok');
    expect(await server.gateway.sendToUser('alice', 'late')).toBe(1);
    expect(await socket.next('message')).toMatchObject({ type: 'message', data: 'late' });
    socket.close();
  });

  it("closes 4403 when the JWT's user is not the ticket's user", async () => {
    server = await startServer(twoLayer);
    const socket = await TestSocket.withTicket(server.wsUrl, await server.ticket('alice'));
    socket.send({ type: 'auth', token: await server.token('mallory') });
    expect(await socket.closed).toEqual({ code: 4403, reason: 'token is for a different user' });
    expect(server.gateway.connectionCount('mallory')).toBe(0);
  });

  it('closes 4401 when the JWT step fails', async () => {
    server = await startServer(twoLayer);
    const socket = await TestSocket.withTicket(server.wsUrl, await server.ticket('alice'));
    socket.send({ type: 'auth', token: await server.token('alice', { key: new TextEncoder().encode('x'.repeat(40)) }) });
    expect((await socket.closed).code).toBe(4401);
  });

  it('rejects two-layer mode without required tickets at construction', async () => {
    await expect(startServer({ requireAuthMessage: true })).rejects.toThrow(
      "invalid option 'requireAuthMessage': two-layer mode needs ticket: 'required'",
    );
  });
});

describe('token at the handshake', () => {
  it('is refused with 400 while handshakeToken is off (the default)', async () => {
    server = await startServer();
    const token = await server.token('alice');
    expect((await refusal(TestSocket.open(server.wsUrl, { protocols: [SUBPROTOCOL, `${TOKEN_PROTOCOL_PREFIX}${token}`] }))).status).toBe(400);
  });

  it('authenticates from the subprotocol or the query string when enabled', async () => {
    server = await startServer({ handshakeToken: true });
    const viaProtocol = await TestSocket.open(server.wsUrl, {
      protocols: [SUBPROTOCOL, `${TOKEN_PROTOCOL_PREFIX}${await server.token('alice')}`],
    });
    expect((await viaProtocol.next('auth_ok')).user).toBe('alice');
    expect(viaProtocol.ws.protocol).toBe(SUBPROTOCOL);
    const viaQuery = await TestSocket.open(`${server.wsUrl}?token=${await server.token('bob')}`);
    expect((await viaQuery.next('auth_ok')).user).toBe('bob');
    viaProtocol.close();
    viaQuery.close();
  });

  it('refuses a bad handshake token with 401', async () => {
    server = await startServer({ handshakeToken: true });
    expect((await refusal(TestSocket.open(`${server.wsUrl}?token=abc.def.ghi`))).status).toBe(401);
  });
});

describe('per-message auth (seed 004)', () => {
  it('hands each message to the application with the claims of its own token', async () => {
    const seen: Array<{ user: string; role: unknown; data: unknown }> = [];
    server = await startServer({
      perMessageAuth: true,
      onMessage: ({ user, claims, data }) => void seen.push({ user, role: claims.role, data }),
    });
    const socket = await TestSocket.open(server.wsUrl);
    const token = await server.token('alice', { claims: { role: 'admin' } });
    socket.send({ type: 'message', data: 1, token, id: 'a' });
    socket.send({ type: 'message', data: 2, token, id: 'b' });
    await socket.collect('ack', 2);
    expect(seen).toEqual([
      { user: 'alice', role: 'admin', data: 1 },
      { user: 'alice', role: 'admin', data: 2 },
    ]);
    expect((await socket.next('auth_ok')).user).toBe('alice');
    socket.close();
  });

  it('closes 4401 on a message without a token', async () => {
    server = await startServer({ perMessageAuth: true });
    const socket = await TestSocket.authenticated(server);
    socket.send({ type: 'message', data: 1 });
    expect(await socket.closed).toEqual({ code: 4401, reason: 'token required' });
  });

  it("closes 4403 on a message carrying another user's token", async () => {
    server = await startServer({ perMessageAuth: true });
    const socket = await TestSocket.open(server.wsUrl);
    socket.send({ type: 'message', data: 1, token: await server.token('alice') });
    await socket.next('auth_ok');
    socket.send({ type: 'message', data: 2, token: await server.token('bob') });
    expect((await socket.closed).code).toBe(4403);
  });
});
