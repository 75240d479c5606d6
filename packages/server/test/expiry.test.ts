import { afterEach, describe, expect, it } from 'vitest';
import { startServer, TestSocket, type TestServer } from './helpers.js';

let server: TestServer;
afterEach(async () => {
  await server?.close();
});

/** Opens a socket authenticated with a token expiring `expiresIn` seconds from the server clock. */
async function authenticate(target: TestServer, sub: string, expiresIn: number): Promise<{ socket: TestSocket; exp: number }> {
  const socket = await TestSocket.open(target.wsUrl);
  socket.send({ type: 'auth', token: await target.token(sub, { expiresIn }) });
  const ok = await socket.next('auth_ok');
  return { socket, exp: ok.expiresAt };
}

/** Moves the server clock to `at` (ms epoch). */
function advanceTo(target: TestServer, at: number): void {
  target.clock.advance(at - target.clock.now());
}

describe('expiry policy: reauth', () => {
  it('warns reauthWindowMs before exp, and an in-band auth carries on without a reconnect', async () => {
    server = await startServer({ reauthWindowMs: 30_000 });
    const { socket, exp } = await authenticate(server, 'alice', 60);
    advanceTo(server, exp - 30_001);
    await socket.settle();
    expect(socket.frames.some((frame) => frame.type === 'reauth_required')).toBe(false);
    server.clock.advance(1);
    expect(await socket.next('reauth_required')).toEqual({ type: 'reauth_required', deadline: exp, reason: 'expiring' });

    const from = socket.frames.length;
    socket.send({ type: 'auth', token: await server.token('alice', { expiresIn: 120 }) });
    const ok = await socket.next('auth_ok', from);
    expect(ok.expiresAt).toBeGreaterThan(exp);
    advanceTo(server, exp + 1);
    expect(await server.gateway.sendToUser('alice', 'still here')).toBe(1);
    expect(await socket.next('message')).toMatchObject({ type: 'message', data: 'still here' });
    socket.close();
  });

  it('warns a token born inside the window halfway through its life, after its auth_ok', async () => {
    server = await startServer({ reauthWindowMs: 30_000 });
    const socket = await TestSocket.open(server.wsUrl);
    socket.send({ type: 'auth', token: await server.token('alice', { expiresIn: 20 }) });
    const { expiresAt } = await socket.next('auth_ok');
    const half = Math.floor((expiresAt - server.clock.now()) / 2);
    server.clock.advance(half - 1);
    await socket.settle();
    expect(socket.frames.some((frame) => frame.type === 'reauth_required')).toBe(false);
    server.clock.advance(1);
    expect(await socket.next('reauth_required')).toEqual({ type: 'reauth_required', deadline: expiresAt, reason: 'expiring' });
    expect(socket.frames.map((frame) => frame.type).filter((type) => type !== 'pong')).toEqual(['auth_ok', 'reauth_required']);
    socket.close();
  });

  it('holds messages sent during expiry and flushes them after a late reauth, in order, exactly once', async () => {
    server = await startServer({ reauthWindowMs: 10_000, reauthGraceMs: 20_000 });
    const { socket, exp } = await authenticate(server, 'alice', 30);
    for (let i = 0; i < 5; i++) await server.gateway.sendToUser('alice', `before-${i}`);
    advanceTo(server, exp);
    expect((await socket.collect('reauth_required', 2))[1]).toEqual({
      type: 'reauth_required',
      deadline: exp + 20_000,
      reason: 'expired',
    });
    for (let i = 0; i < 100; i++) expect(await server.gateway.sendToUser('alice', `held-${i}`)).toBe(1);
    await socket.settle();
    expect(socket.frames.filter((frame) => frame.type === 'message')).toHaveLength(5);

    socket.send({ type: 'auth', token: await server.token('alice', { expiresIn: 60 }) });
    const messages = await socket.collect('message', 105);
    await server.gateway.sendToUser('alice', 'after');
    await socket.collect('message', 106);
    await socket.settle();
    const data = socket.frames.flatMap((frame) => (frame.type === 'message' ? [frame.data] : []));
    expect(data).toEqual([
      ...Array.from({ length: 5 }, (_, i) => `before-${i}`),
      ...Array.from({ length: 100 }, (_, i) => `held-${i}`),
      'after',
    ]);
    expect(messages.length).toBe(105);
    // auth_ok precedes the flushed messages, so the client knows it is authenticated again.
    const okIndex = socket.frames.findLastIndex((frame) => frame.type === 'auth_ok');
    const firstHeld = socket.frames.findIndex((frame) => frame.type === 'message' && frame.data === 'held-0');
    expect(okIndex).toBeLessThan(firstHeld);
    socket.close();
  });

  it('holds the client’s own frames while expired and processes them after reauth', async () => {
    const received: unknown[] = [];
    server = await startServer({ reauthGraceMs: 20_000, onMessage: ({ data }) => void received.push(data) });
    const { socket, exp } = await authenticate(server, 'alice', 60);
    advanceTo(server, exp);
    await socket.collect('reauth_required', 2);
    socket.send({ type: 'message', data: 'while-held-1' });
    socket.send({ type: 'message', data: 'while-held-2' });
    await socket.settle();
    expect(received).toEqual([]);
    socket.send({ type: 'auth', token: await server.token('alice', { expiresIn: 60 }) });
    socket.send({ type: 'message', data: 'after-auth', id: 'x' });
    await socket.next('ack');
    expect(received).toEqual(['while-held-1', 'while-held-2', 'after-auth']);
    socket.close();
  });

  it('closes 4419 when the reauth deadline passes, and nothing held reaches the socket', async () => {
    server = await startServer({ reauthGraceMs: 10_000 });
    const { socket, exp } = await authenticate(server, 'alice', 60);
    advanceTo(server, exp);
    await server.gateway.sendToUser('alice', 'secret-after-expiry');
    advanceTo(server, exp + 10_000);
    expect(await socket.closed).toEqual({ code: 4419, reason: 'reauth deadline missed' });
    expect(socket.frames.some((frame) => frame.type === 'message')).toBe(false);
  });

  it('closes 4403 on reauth as a different user and drops the held messages for that socket', async () => {
    server = await startServer();
    const { socket, exp } = await authenticate(server, 'alice', 60);
    advanceTo(server, exp);
    await server.gateway.sendToUser('alice', 'for-alice-only');
    socket.send({ type: 'auth', token: await server.token('mallory', { expiresIn: 60 }) });
    expect(await socket.closed).toEqual({ code: 4403, reason: 'token is for a different user' });
    expect(socket.frames.some((frame) => frame.type === 'message')).toBe(false);
  });

  it('never leaks one user’s held messages to another user', async () => {
    server = await startServer({ reauthGraceMs: 60_000 });
    const alice = await authenticate(server, 'alice', 60);
    const bob = await authenticate(server, 'bob', 600);
    advanceTo(server, alice.exp);
    for (let i = 0; i < 20; i++) {
      await server.gateway.sendToUser('alice', { to: 'alice', i });
      await server.gateway.sendToUser('bob', { to: 'bob', i });
    }
    await bob.socket.collect('message', 20);
    alice.socket.send({ type: 'auth', token: await server.token('alice', { expiresIn: 60 }) });
    await alice.socket.collect('message', 20);
    await alice.socket.settle();
    await bob.socket.settle();
    const to = (socket: TestSocket) =>
      socket.frames.flatMap((frame) => (frame.type === 'message' ? [(frame.data as { to: string }).to] : []));
    expect(to(alice.socket)).toEqual(Array(20).fill('alice'));
    expect(to(bob.socket)).toEqual(Array(20).fill('bob'));
    alice.socket.close();
    bob.socket.close();
  });

  it('logs out at once while held, dropping what was held', async () => {
    server = await startServer();
    const { socket, exp } = await authenticate(server, 'alice', 60);
    advanceTo(server, exp);
    await server.gateway.sendToUser('alice', 'held');
    socket.send({ type: 'logout' });
    await socket.next('logged_out');
    expect(await server.gateway.sendToUser('alice', 'after logout')).toBe(0);
    await socket.settle();
    expect(socket.frames.some((frame) => frame.type === 'message')).toBe(false);
    expect(server.gateway.stats()).toMatchObject({ held: 0, heldMessages: 0 });
    socket.close();
  });

  it('closes 4008 when the held queue overflows', async () => {
    server = await startServer({ maxHeldMessages: 3 });
    const { socket, exp } = await authenticate(server, 'alice', 60);
    advanceTo(server, exp);
    for (let i = 0; i < 4; i++) await server.gateway.sendToUser('alice', i);
    expect((await socket.closed).code).toBe(4008);
  });

  it('holds instead of delivering when exp has passed but the timer has not fired yet', async () => {
    server = await startServer({ reauthWindowMs: 0 });
    const { socket, exp } = await authenticate(server, 'alice', 60);
    // Jump the clock without running timers, as a busy event loop would.
    (server.clock as unknown as { now: () => number }).now = () => exp + 5;
    expect(await server.gateway.sendToUser('alice', 'late')).toBe(1);
    await socket.settle();
    expect(socket.frames.filter((frame) => frame.type === 'message')).toEqual([]);
    expect((await socket.next('reauth_required')).reason).toBe('expired');
    socket.close();
  });
});

describe('expiry policy: close', () => {
  it('closes 4419 at exp', async () => {
    server = await startServer({ expiryPolicy: 'close' });
    const { socket, exp } = await authenticate(server, 'alice', 60);
    advanceTo(server, exp - 1);
    await socket.settle();
    expect(socket.ws.readyState).toBe(socket.ws.OPEN);
    server.clock.advance(1);
    expect(await socket.closed).toEqual({ code: 4419, reason: 'token expired' });
  });
});

describe('expiry policy: ignore', () => {
  it('keeps delivering after exp (the documented risk)', async () => {
    server = await startServer({ expiryPolicy: 'ignore' });
    const { socket, exp } = await authenticate(server, 'alice', 60);
    advanceTo(server, exp + 60_000);
    expect(await server.gateway.sendToUser('alice', 'stale')).toBe(1);
    expect(await socket.next('message')).toMatchObject({ type: 'message', data: 'stale' });
    socket.close();
  });
});

describe('broadcast', () => {
  it('reaches only authenticated, unexpired connections', async () => {
    server = await startServer({ reauthGraceMs: 60_000 });
    const fresh = await authenticate(server, 'alice', 600);
    const expiring = await authenticate(server, 'bob', 60);
    const anonymous = await TestSocket.open(server.wsUrl);
    advanceTo(server, expiring.exp);
    await server.gateway.broadcast('hello');
    expect(await fresh.socket.next('message')).toMatchObject({ type: 'message', data: 'hello' });
    await expiring.socket.settle();
    await anonymous.settle();
    expect(expiring.socket.frames.some((frame) => frame.type === 'message')).toBe(false);
    expect(anonymous.frames.some((frame) => frame.type === 'message')).toBe(false);
    for (const socket of [fresh.socket, expiring.socket, anonymous]) socket.close();
  });
});
