import { HandlerError, ManualClock } from '@authsocket/server';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHttpProxy, type HttpProxy, type HttpProxyOptions, type RequestReport, verifySignature } from '../src/index.js';
import { Backend, CapturingLogger, json } from './backend.js';
import { connectContext, disconnectEvent, EXP, publishContext, rpcContext, subscribeContext } from './contexts.js';

// The HTTP contract, one event at a time: the handler methods called directly with contexts built
// as the core builds them, against a real HTTP backend.

const SECRET = 'proxy-secret-that-is-at-least-32-bytes!';
const NOW = Date.UTC(2030, 0, 1);

let backend: Backend;
let proxy: HttpProxy;
let logger: CapturingLogger;
let reports: RequestReport[];

function start(options: Partial<HttpProxyOptions> = {}): HttpProxy {
  logger = new CapturingLogger();
  reports = [];
  proxy = createHttpProxy({
    secret: SECRET,
    nodeId: 'node-1',
    connect: backend.url('/connect'),
    refresh: backend.url('/refresh'),
    subscribe: backend.url('/subscribe'),
    publish: backend.url('/publish'),
    rpc: backend.url('/rpc'),
    disconnect: backend.url('/disconnect'),
    forwardClaims: ['tenant', 'role', 'absent'],
    retryDelayMs: 10,
    logger,
    clock: new ManualClock(NOW),
    ...options,
  });
  proxy.on('request', (report) => reports.push(report));
  return proxy;
}

/** The error a promise rejects with. */
async function rejection(promise: unknown): Promise<HandlerError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof HandlerError) return error;
    throw error;
  }
  throw new Error('expected a HandlerError');
}

const IDENTITY = { user: 'alice', claims: { tenant: 'acme', role: 'admin' }, connection: 'c0ffee00-0000-4000-8000-000000000007', node: 'node-1', exp: EXP, ts: NOW };

beforeEach(async () => {
  backend = await Backend.start();
});

afterEach(async () => {
  await proxy?.close();
  await backend.close();
});

describe('the request', () => {
  it('is a signed JSON POST with the identity and only the forwarded claims', async () => {
    start();
    await proxy.onConnect?.(connectContext());
    const [request] = backend.to('/connect');
    expect(request?.headers['content-type']).toBe('application/json');
    expect(request?.body).toEqual({ event: 'connect', identity: IDENTITY });
    expect(verifySignature(SECRET, request?.headers['authsocket-signature'], request?.raw ?? '', { now: NOW })).toEqual({ ok: true, timestamp: NOW });
    expect(verifySignature('another-secret-of-at-least-32-bytes!!', request?.headers['authsocket-signature'], request?.raw ?? '', { now: NOW }).ok).toBe(false);
  });

  it('forwards no claims by default, and the frame token only when the frame had one (per-message auth)', async () => {
    start({ forwardClaims: undefined });
    backend.on('/rpc', json({ result: 1 }));
    await proxy.onRpc?.(rpcContext('m', 1));
    await proxy.onRpc?.(rpcContext('m', 1, 'the.frame.token'));
    const [plain, withToken] = backend.to('/rpc');
    expect(plain?.body.identity).toEqual({ ...IDENTITY, claims: {} });
    expect(withToken?.body.identity).toEqual({ ...IDENTITY, claims: {}, token: 'the.frame.token' });
  });
});

describe('connect and refresh', () => {
  it('accepts on {}, adds data and topics, and refuses with the backend close code and reason', async () => {
    start();
    backend.on('/connect', json({}));
    expect(await proxy.onConnect?.(connectContext())).toEqual({});
    backend.on('/connect', json({ data: { plan: 'pro' }, topics: ['news', 'user-feed:alice'], extra: 'ignored' }));
    expect(await proxy.onConnect?.(connectContext())).toEqual({ data: { plan: 'pro' }, topics: ['news', 'user-feed:alice'] });
    backend.on('/connect', json({ error: { code: 4403, reason: 'banned' } }));
    const error = await rejection(proxy.onConnect?.(connectContext()));
    expect(error).toMatchObject({ errorCode: 'forbidden', message: 'banned', closeCode: 4403, temporary: false });
    backend.on('/connect', json({ error: { code: 4000 } }));
    expect(await rejection(proxy.onConnect?.(connectContext()))).toMatchObject({ message: 'forbidden', closeCode: 4000 });
    expect(reports.map((report) => report.outcome)).toEqual(['ok', 'ok', 'ok', 'ok']);
  });

  it('sends a reauth to the refresh URL as event "refresh", which may refuse too', async () => {
    start();
    backend.on('/refresh', json({ data: 'renewed' }));
    expect(await proxy.onConnect?.(connectContext({ refresh: true }))).toEqual({ data: 'renewed' });
    expect(backend.to('/refresh')[0]?.body).toEqual({ event: 'refresh', identity: IDENTITY });
    backend.on('/refresh', json({ error: { code: 4401, reason: 'session ended' } }));
    expect(await rejection(proxy.onConnect?.(connectContext({ refresh: true })))).toMatchObject({ closeCode: 4401, temporary: false });
    expect(backend.to('/connect')).toHaveLength(0);
  });

  it('without a refresh URL, a reauth is not proxied (and without a connect URL, a first bind is not)', async () => {
    start({ refresh: undefined });
    expect(proxy.onConnect?.(connectContext({ refresh: true }))).toBeUndefined();
    await proxy.close();
    start({ connect: undefined });
    expect(proxy.onConnect?.(connectContext())).toBeUndefined();
    await proxy.onConnect?.(connectContext({ refresh: true }));
    expect(backend.requests.map((request) => request.path)).toEqual(['/refresh']);
  });
});

describe('subscribe and publish', () => {
  it('subscribe: {} allows, {data} allows with ack data, {error} denies with its data', async () => {
    start();
    backend.on('/subscribe', json({}));
    expect(await proxy.onSubscribe?.(subscribeContext('room'))).toBe(true);
    expect(backend.to('/subscribe')[0]?.body).toEqual({ event: 'subscribe', identity: IDENTITY, topic: 'room' });
    backend.on('/subscribe', json({ data: { members: 3 } }));
    expect(await proxy.onSubscribe?.(subscribeContext('room'))).toEqual({ allow: true, data: { members: 3 } });
    backend.on('/subscribe', json({ error: { message: 'members only', data: { join: '/plans' } } }));
    expect(await proxy.onSubscribe?.(subscribeContext('room'))).toEqual({ allow: false, data: { join: '/plans' } });
    backend.on('/subscribe', json({ error: {} }));
    expect(await proxy.onSubscribe?.(subscribeContext('room'))).toBe(false);
  });

  it('publish: {} allows as sent, {data} replaces the payload (null too), {error} denies', async () => {
    start();
    backend.on('/publish', json({}));
    expect(await proxy.onPublish?.(publishContext('room', { text: 'hi' }, 'tok'))).toBe(true);
    expect(backend.to('/publish')[0]?.body).toEqual({ event: 'publish', identity: { ...IDENTITY, token: 'tok' }, topic: 'room', data: { text: 'hi' } });
    backend.on('/publish', json({ data: { text: 'HI', by: 'alice' } }));
    expect(await proxy.onPublish?.(publishContext('room', { text: 'hi' }))).toEqual({ allow: true, data: { text: 'HI', by: 'alice' } });
    backend.on('/publish', json({ data: null }));
    expect(await proxy.onPublish?.(publishContext('room', 'x'))).toEqual({ allow: true, data: null });
    backend.on('/publish', json({ error: { message: 'spam', data: { rule: 7 } } }));
    expect(await proxy.onPublish?.(publishContext('room', 'x'))).toEqual({ allow: false, data: { rule: 7 } });
  });

  it('routes by the longest topic prefix, then the catch-all; with no catch-all an unrouted topic is refused unsent', async () => {
    start({ subscribeByPrefix: { 'chat:': backend.url('/chat'), 'chat:vip:': backend.url('/vip') } });
    await proxy.onSubscribe?.(subscribeContext('chat:vip:1'));
    await proxy.onSubscribe?.(subscribeContext('chat:1'));
    await proxy.onSubscribe?.(subscribeContext('news'));
    expect(backend.requests.map((request) => [request.path, request.body.topic])).toEqual([
      ['/vip', 'chat:vip:1'],
      ['/chat', 'chat:1'],
      ['/subscribe', 'news'],
    ]);
    expect(reports.map((report) => report.endpoint)).toEqual(["subscribeByPrefix['chat:vip:']", "subscribeByPrefix['chat:']", 'subscribe']);
    await proxy.close();
    start({ subscribe: undefined, publish: undefined, publishByPrefix: { 'chat:': backend.url('/chat-publish') } });
    expect(proxy.onSubscribe).toBeUndefined();
    expect(await proxy.onPublish?.(publishContext('news', 'x'))).toBe(false);
    expect(await proxy.onPublish?.(publishContext('chat:1', 'x'))).toBe(true);
    expect(backend.requests.slice(3).map((request) => request.path)).toEqual(['/chat-publish']);
  });
});

describe('rpc', () => {
  it('returns result, and turns error into the client error with its code and data', async () => {
    start();
    backend.on('/rpc', (request, response) => json({ result: { echo: request.body.data, method: request.body.method } })(request, response));
    expect(await proxy.onRpc?.(rpcContext('sum', [1, 2]))).toEqual({ echo: [1, 2], method: 'sum' });
    expect(backend.to('/rpc')[0]?.body).toEqual({ event: 'rpc', identity: IDENTITY, method: 'sum', data: [1, 2] });
    await proxy.onRpc?.(rpcContext('ping', undefined));
    expect(backend.to('/rpc')[1]?.body.data).toBeNull();
    backend.on('/rpc', json({ result: null }));
    expect(await proxy.onRpc?.(rpcContext('m', 1))).toBeNull();
    backend.on('/rpc', json({ error: { message: 'insufficient funds', data: { balance: 3 } } }));
    const error = await rejection(proxy.onRpc?.(rpcContext('pay', 5)));
    expect(error).toMatchObject({ errorCode: 'rejected', message: 'insufficient funds', data: { balance: 3 }, temporary: false });
    backend.on('/rpc', json({ error: { code: 'not_found', message: 'no such method' } }));
    expect(await rejection(proxy.onRpc?.(rpcContext('nope', 1)))).toMatchObject({ errorCode: 'not_found', message: 'no such method' });
    backend.on('/rpc', json({ error: { code: 'bad_request' } }));
    expect(await rejection(proxy.onRpc?.(rpcContext('nope', 1)))).toMatchObject({ errorCode: 'bad_request', message: 'rpc rejected' });
  });

  it.each([
    [{}, "an rpc answer has 'result' or 'error'"],
    [{ error: 'no' }, "'error' must be an object, got 'no'"],
    [{ error: { code: 'unavailable' } }, "'error.code' must be one of rejected, forbidden, not_found, bad_request, got 'unavailable'"],
    [{ error: { message: 42 } }, "'error.message' must be a string, got 42"],
  ])('treats the malformed answer %j as a backend bug: unavailable, logged at error', async (answer, detail) => {
    start();
    backend.on('/rpc', json(answer));
    expect(await rejection(proxy.onRpc?.(rpcContext('m', 1)))).toMatchObject({ errorCode: 'unavailable', message: 'backend unavailable', temporary: true });
    expect(logger.at('error').map((line) => line.fields.err)).toEqual([`invalid answer: ${detail}`]);
    expect(reports.map((report) => report.outcome)).toEqual(['invalid']);
  });
});

describe('disconnect', () => {
  it('reports code and duration without being awaited, and nothing for a connection that never authenticated', async () => {
    start();
    expect(proxy.onDisconnect?.(disconnectEvent(4403, 5_000))).toBeUndefined();
    const [request] = await backend.received('/disconnect');
    expect(request?.body).toEqual({ event: 'disconnect', identity: IDENTITY, code: 4403, durationMs: 5_000 });
    proxy.onDisconnect?.(disconnectEvent(1006, 10, { authenticated: false }));
    proxy.onDisconnect?.(disconnectEvent(1000, 20));
    const requests = await backend.received('/disconnect', 2);
    expect(requests.map((received) => received.body.code)).toEqual([4403, 1000]);
  });

  it('ignores what a disconnect endpoint answers: 204 with no body is fine', async () => {
    start();
    backend.on('/disconnect', (_request, response) => void response.writeHead(204).end());
    proxy.onDisconnect?.(disconnectEvent());
    await backend.received('/disconnect');
    await proxy.close();
    expect(reports.map((report) => [report.outcome, report.status])).toEqual([['ok', 204]]);
    expect(logger.lines).toEqual([]);
  });
});
