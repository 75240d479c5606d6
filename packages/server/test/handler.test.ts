import { CloseCode } from '@authsocket/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConnectContext, DisconnectEvent, MessageHandler, RpcContext } from '../src/core/ports.js';
import { HandlerError } from '../src/errors.js';
import { startServer, type TestServer, TestSocket } from './helpers.js';

/** The handler port (`handler` option) over real sockets: what each answer of a backend does to the client. */

let server: TestServer | undefined;
const sockets: TestSocket[] = [];

async function start(handler: MessageHandler, options: Parameters<typeof startServer>[0] = {}): Promise<TestServer> {
  server = await startServer({ handler, ...options });
  return server;
}

async function open(target: TestServer): Promise<TestSocket> {
  const socket = await TestSocket.open(target.wsUrl);
  sockets.push(socket);
  return socket;
}

async function authenticated(target: TestServer, user = 'alice'): Promise<TestSocket> {
  const socket = await open(target);
  socket.send({ type: 'auth', token: await target.token(user) });
  await socket.next('auth_ok');
  return socket;
}

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await server?.close();
  server = undefined;
});

describe('onConnect', () => {
  it('adds auth_ok.data and subscribes the connection server-side to the topics it names', async () => {
    const seen: ConnectContext[] = [];
    const target = await start({
      onConnect: (context) => {
        seen.push(context);
        return { data: { plan: 'pro' }, topics: ['news'] };
      },
    });
    const socket = await open(target);
    socket.send({ type: 'auth', token: await target.token('alice') });
    const authOk = await socket.next('auth_ok');
    expect(authOk.data).toEqual({ plan: 'pro' });
    expect(authOk.streams?.['topic:news']).toMatchObject({ offset: 0 });
    expect(seen.map((context) => [context.user, context.refresh, context.claims.sub])).toEqual([['alice', false, 'alice']]);
    expect(await target.gateway.publish('news', 'extra')).toBe(1);
    expect((await socket.next('message')).data).toBe('extra');
  });

  it('closes with the refusal the handler chose, and never binds the identity', async () => {
    const target = await start({
      onConnect: ({ user }) => {
        if (user === 'mallory') throw new HandlerError('forbidden', 'banned', { closeCode: 4403 });
        if (user === 'odd') throw new HandlerError('forbidden', 'odd code', { closeCode: 1006 });
        if (user === 'later') throw new HandlerError('unavailable', 'backend unavailable');
        throw new Error('a bug in the handler');
      },
    });
    const outcomes: Record<string, { code: number; reason: string }> = {};
    for (const user of ['mallory', 'odd', 'later', 'buggy']) {
      const socket = await open(target);
      socket.send({ type: 'auth', token: await target.token(user) });
      outcomes[user] = await socket.closed;
      expect(socket.frames.filter((frame) => frame.type === 'auth_ok')).toEqual([]);
    }
    expect(outcomes).toEqual({
      mallory: { code: 4403, reason: 'banned' },
      // 1006 cannot be sent: a refusal all the same.
      odd: { code: CloseCode.Forbidden, reason: 'odd code' },
      // The client's action for 1013 is backoff: it comes back, it is not logged out.
      later: { code: CloseCode.TryAgainLater, reason: 'backend unavailable' },
      buggy: { code: CloseCode.InternalError, reason: 'internal error' },
    });
    expect(target.gateway.connectionCount('mallory')).toBe(0);
  });

  it('on a reauth: a refusal closes, an unavailable backend keeps the freshly verified token', async () => {
    let refresh: 'refuse' | 'unavailable' = 'unavailable';
    const target = await start({
      onConnect: ({ refresh: isRefresh }) => {
        if (!isRefresh) return undefined;
        if (refresh === 'refuse') throw new HandlerError('forbidden', 'revoked by the backend', { closeCode: 4403 });
        throw new HandlerError('unavailable', 'backend unavailable');
      },
    });
    const socket = await authenticated(target);
    socket.send({ type: 'auth', token: await target.token('alice', { expiresIn: 900 }) });
    const second = await socket.collect('auth_ok', 2);
    expect(second[1]!.expiresAt).toBeGreaterThan(second[0]!.expiresAt);
    refresh = 'refuse';
    socket.send({ type: 'auth', token: await target.token('alice', { expiresIn: 1200 }) });
    expect(await socket.closed).toEqual({ code: 4403, reason: 'revoked by the backend' });
  });
  it("carries the token to onConnect in per-message-auth mode only, for a backend that verifies it itself", async () => {
    const tokens: (string | undefined)[] = [];
    const target = await start({ onConnect: ({ token }) => void tokens.push(token) }, { perMessageAuth: true });
    const token = await target.token('alice');
    const socket = await open(target);
    socket.send({ type: 'message', data: 'first', token });
    await socket.next('auth_ok');
    await target.close();
    server = undefined;
    const plain = await start({ onConnect: ({ token: seen }) => void tokens.push(seen ?? 'none') });
    await authenticated(plain);
    expect(tokens).toEqual([token, 'none']);
  });
});

describe('onMessage', () => {
  it("puts what the handler resolved with into ack.data, and acks without data when it returned nothing", async () => {
    const target = await start({
      onMessage: async ({ data }) => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        return (data as { stored?: boolean }).stored ? { entry: '1700000000000-0' } : undefined;
      },
    });
    const socket = await authenticated(target);
    socket.send({ type: 'message', id: 'm1', data: { stored: true } });
    expect(await socket.next('ack')).toEqual({ type: 'ack', id: 'm1', data: { entry: '1700000000000-0' } });
    socket.send({ type: 'message', id: 'm2', data: {} });
    expect((await socket.collect('ack', 2))[1]).toEqual({ type: 'ack', id: 'm2' });
  });

  it('sends no ack, only the error, when the handler throws after deciding nothing was stored', async () => {
    const target = await start({
      onMessage: () => {
        throw new HandlerError('unavailable', 'queue unavailable', { temporary: true });
      },
    });
    const socket = await authenticated(target);
    socket.send({ type: 'message', id: 'm1', data: 1 });
    expect(await socket.next('error')).toEqual({ type: 'error', id: 'm1', code: 'unavailable', message: 'queue unavailable', temporary: true });
  });
});

describe('onRpc', () => {
  it("answers an rpc with a result frame carrying the handler's value, and the request's method and data", async () => {
    const calls: RpcContext[] = [];
    const target = await start({
      onRpc: (context) => {
        calls.push(context);
        const { a, b } = context.data as { a: number; b: number };
        return { sum: a + b };
      },
    });
    const socket = await authenticated(target);
    socket.send({ type: 'rpc', id: 'r1', method: 'add', data: { a: 2, b: 3 } });
    expect(await socket.next('result')).toEqual({ type: 'result', id: 'r1', data: { sum: 5 } });
    expect(calls.map((call) => [call.user, call.method, call.token])).toEqual([['alice', 'add', undefined]]);
  });

  it('answers error frames for a missing handler, a refusal and an unavailable backend, and the socket stays open', async () => {
    const none = await start({});
    const socket = await authenticated(none);
    socket.send({ type: 'rpc', id: 'r1', method: 'add' });
    expect(await socket.next('error')).toMatchObject({ id: 'r1', code: 'not_found' });
    await none.close();
    server = undefined;

    const target = await start({
      onRpc: async ({ method }) => {
        if (method === 'refuse') throw new HandlerError('rejected', 'not in this state', { data: { state: 'closed' } });
        if (method === 'down') throw new HandlerError('unavailable', 'backend unavailable');
        throw new Error('secret detail that must not reach the client');
      },
    });
    const client = await authenticated(target);
    for (const method of ['refuse', 'down', 'bug']) client.send({ type: 'rpc', id: method, method });
    const errors = await client.collect('error', 3);
    expect(Object.fromEntries(errors.map(({ id, code, message, temporary, data }) => [id, { code, message, temporary, data }]))).toEqual({
      refuse: { code: 'rejected', message: 'not in this state', temporary: undefined, data: { state: 'closed' } },
      down: { code: 'unavailable', message: 'backend unavailable', temporary: true, data: undefined },
      bug: { code: 'rejected', message: 'rpc rejected', temporary: undefined, data: undefined },
    });
    await client.settle();
    expect(client.ws.readyState).toBe(client.ws.OPEN);
  });

  it('does not hold up the next frame while a slow rpc is on its way', async () => {
    let release: () => void = () => {};
    const target = await start({
      onRpc: () =>
        new Promise((resolve) => {
          release = () => resolve('late');
        }),
    });
    const socket = await authenticated(target);
    socket.send({ type: 'rpc', id: 'slow', method: 'wait' });
    await socket.settle();
    expect(socket.frames.some((frame) => frame.type === 'result')).toBe(false);
    release();
    expect(await socket.next('result')).toEqual({ type: 'result', id: 'slow', data: 'late' });
  });

  it("passes the frame's own token to the handler in per-message-auth mode, and its methods work destructured", async () => {
    const tokens: (string | undefined)[] = [];
    const target = await start(
      {
        onRpc: ({ token, reply }) => {
          reply('pushed first');
          return tokens.push(token);
        },
      },
      { perMessageAuth: true },
    );
    const socket = await open(target);
    const token = await target.token('alice');
    socket.send({ type: 'rpc', id: 'r1', method: 'echo', token });
    expect(await socket.next('result')).toEqual({ type: 'result', id: 'r1', data: 1 });
    expect(tokens).toEqual([token]);
    expect((await socket.next('message')).data).toBe('pushed first');
  });
});

describe('onSubscribe and onPublish', () => {
  it('denies a subscribe with an error frame carrying the handler data, allows with data in the ack', async () => {
    const target = await start({
      onSubscribe: ({ topic }) => (topic === 'vip' ? { allow: false, data: { upgrade: true } } : { allow: true, data: { welcome: topic } }),
    });
    const socket = await authenticated(target);
    socket.send({ type: 'subscribe', topic: 'vip', id: 's1' });
    expect(await socket.next('error')).toMatchObject({ id: 's1', code: 'forbidden', data: { upgrade: true } });
    socket.send({ type: 'subscribe', topic: 'lobby', id: 's2' });
    expect(await socket.next('ack')).toMatchObject({ id: 's2', data: { welcome: 'lobby' } });
  });

  it('answers a failing subscribe handler with an error frame, not a close', async () => {
    const target = await start({
      onSubscribe: () => {
        throw new HandlerError('unavailable', 'backend unavailable');
      },
    });
    const socket = await authenticated(target);
    socket.send({ type: 'subscribe', topic: 'lobby', id: 's1' });
    expect(await socket.next('error')).toMatchObject({ id: 's1', code: 'unavailable', temporary: true });
    await socket.settle();
    expect(socket.ws.readyState).toBe(socket.ws.OPEN);
  });

  it('publishes what onPublish returns as data, and nothing when it denies', async () => {
    const target = await start({
      onPublish: ({ topic, data }) => (topic === 'quiet' ? false : { allow: true, data: { text: String(data).toUpperCase() } }),
    });
    const reader = await authenticated(target, 'bob');
    reader.send({ type: 'subscribe', topic: 'loud', id: 's1' });
    await reader.next('ack');
    const writer = await authenticated(target);
    writer.send({ type: 'publish', topic: 'quiet', data: 'psst', id: 'p1' });
    expect(await writer.next('error')).toMatchObject({ id: 'p1', code: 'forbidden' });
    writer.send({ type: 'publish', topic: 'loud', data: 'hello', id: 'p2' });
    await writer.next('ack');
    expect((await reader.next('message')).data).toEqual({ text: 'HELLO' });
    await reader.settle();
    expect(reader.frames.filter((frame) => frame.type === 'message')).toHaveLength(1);
  });
});

describe('onDisconnect', () => {
  it('reports the user, the close code and how long the connection lived', async () => {
    const events: DisconnectEvent[] = [];
    const target = await start({ onDisconnect: (event) => void events.push(event) });
    const socket = await authenticated(target);
    target.clock.advance(4_000);
    socket.ws.close(1000, 'bye');
    await socket.closed;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(events.map(({ user, code, durationMs }) => ({ user, code, durationMs }))).toEqual([{ user: 'alice', code: 1000, durationMs: 4_000 }]);
  });
});

describe('handler answers that go wrong', () => {
  it('answers an rpc result that is not JSON with an error frame, and keeps serving', async () => {
    const target = await start({
      onRpc: async () => {
        const loop: Record<string, unknown> = {};
        loop.self = loop;
        return loop;
      },
    });
    const socket = await authenticated(target);
    socket.send({ type: 'rpc', id: 'r1', method: 'loop' });
    expect(await socket.next('error')).toMatchObject({ id: 'r1', code: 'rejected', message: 'rpc rejected' });
    await socket.settle();
    expect(socket.ws.readyState).toBe(socket.ws.OPEN);
  });

  it('takes a verdict that is neither a boolean nor an object as a refusal, not a crash', async () => {
    const target = await start({ onSubscribe: () => undefined as unknown as boolean });
    const socket = await authenticated(target);
    socket.send({ type: 'subscribe', topic: 'lobby', id: 's1' });
    expect(await socket.next('error')).toMatchObject({ id: 's1', code: 'forbidden' });
    await socket.settle();
    expect(socket.ws.readyState).toBe(socket.ws.OPEN);
  });

  it('drops a late reply once the user it answers logged out and another signed in on the same socket, whose id is new', async () => {
    let release: () => void = () => {};
    const ids: string[] = [];
    const target = await start({
      onConnect: ({ connection }) => void ids.push(connection.id),
      onRpc: ({ reply }) =>
        new Promise((resolve) => {
          release = () => resolve(reply('for alice only'));
        }),
    });
    const socket = await open(target);
    socket.send({ type: 'auth', token: await target.token('alice') });
    await socket.next('auth_ok');
    socket.send({ type: 'rpc', id: 'slow', method: 'wait' });
    await socket.settle();
    socket.send({ type: 'logout' });
    await socket.next('logged_out');
    socket.send({ type: 'auth', token: await target.token('bob') });
    await socket.collect('auth_ok', 2);
    release();
    await socket.settle();
    expect(socket.frames.filter((frame) => frame.type === 'message' || frame.type === 'result')).toEqual([]);
    expect(ids).toHaveLength(2);
    expect(ids[1]).not.toBe(ids[0]);
    expect(await target.gateway.sendToConnection(ids[0]!, 'to alice')).toBe(0);
    expect(await target.gateway.sendToConnection(ids[1]!, 'to bob')).toBe(1);
  });

  it('holds the per-user cap when binds of one user are in flight at once', async () => {
    const target = await start({ onConnect: () => new Promise((resolve) => setTimeout(() => resolve(undefined), 20)) }, { maxConnectionsPerUser: 2 });
    const sockets = await Promise.all(Array.from({ length: 5 }, () => open(target)));
    const token = await target.token('alice');
    for (const socket of sockets) socket.send({ type: 'auth', token });
    const outcomes = await Promise.all(sockets.map((socket) => Promise.race([socket.next('auth_ok').then(() => 'ok'), socket.closed.then(({ code }) => String(code))])));
    expect(outcomes.filter((outcome) => outcome === 'ok')).toHaveLength(2);
    expect(outcomes.filter((outcome) => outcome === '4409')).toHaveLength(3);
    expect(target.gateway.connectionCount('alice')).toBe(2);
  });

  it('refuses a close code an application may not send', async () => {
    const target = await start({});
    await expect(target.gateway.closeConnection(crypto.randomUUID(), 1005, 'no')).rejects.toThrow(RangeError);
  });
});
