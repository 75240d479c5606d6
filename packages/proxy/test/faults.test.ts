import { HandlerError, ManualClock } from '@authsocket/server';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHttpProxy, type HttpProxy, type HttpProxyOptions, type Outcome, type RequestReport } from '../src/index.js';
import { Backend, type Behaviour, CapturingLogger, deadUrl, Gate, hang, json } from './backend.js';
import { connectContext, disconnectEvent, publishContext, rpcContext, subscribeContext } from './contexts.js';

// Every way a backend can fail, and what the client gets for it: `unavailable`, temporary.

const SECRET = 'proxy-secret-that-is-at-least-32-bytes!';

let backend: Backend;
let proxy: HttpProxy;
let logger: CapturingLogger;
let reports: RequestReport[];
let clock: ManualClock;

function start(options: Partial<HttpProxyOptions> = {}): HttpProxy {
  logger = new CapturingLogger();
  reports = [];
  clock = new ManualClock(Date.now());
  proxy = createHttpProxy({
    secret: SECRET,
    nodeId: 'node-1',
    connect: backend.url('/connect'),
    refresh: backend.url('/refresh'),
    subscribe: backend.url('/subscribe'),
    publish: backend.url('/publish'),
    rpc: backend.url('/rpc'),
    disconnect: backend.url('/disconnect'),
    retryDelayMs: 10,
    logger,
    clock,
    ...options,
  });
  proxy.on('request', (report) => reports.push(report));
  return proxy;
}

async function rejection(promise: unknown): Promise<HandlerError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof HandlerError) return error;
    throw error;
  }
  throw new Error('expected a HandlerError');
}

const UNAVAILABLE = { errorCode: 'unavailable', message: 'backend unavailable', temporary: true, closeCode: 1013 };

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const outcomes = (): Outcome[] => reports.map((report) => report.outcome);

/** Writes a JSON string value 1 KiB at a time, forever: a runaway backend. */
const endless =
  (closed: { at?: number; written: number }): Behaviour =>
  (_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.write('{"result":"');
    const timer = setInterval(() => {
      response.write('x'.repeat(1024));
      closed.written += 1024;
    }, 2);
    response.on('close', () => {
      clearInterval(timer);
      closed.at = Date.now();
    });
  };

beforeEach(async () => {
  backend = await Backend.start();
});

afterEach(async () => {
  await backend.close();
  await proxy?.close();
});

describe('faults become unavailable', () => {
  it('backend down: connection refused, a 1013 close for connect', async () => {
    start({ connect: await deadUrl('/connect') });
    const error = await rejection(proxy.onConnect?.(connectContext()));
    expect(error).toMatchObject(UNAVAILABLE);
    expect(outcomes()).toEqual(['refused']);
    expect(logger.at('warn').map((line) => line.fields)).toEqual([
      expect.objectContaining({ event: 'connect', outcome: 'refused', err: 'cannot connect: ECONNREFUSED' }),
    ]);
  });

  it('slow: aborted after timeoutMs', async () => {
    start({ rpc: { url: backend.url('/rpc'), timeoutMs: 200 } });
    backend.on('/rpc', hang);
    const started = Date.now();
    const error = await rejection(proxy.onRpc?.(rpcContext('m', 1)));
    const elapsed = Date.now() - started;
    expect(error).toMatchObject(UNAVAILABLE);
    expect(elapsed).toBeGreaterThanOrEqual(180);
    expect(elapsed).toBeLessThan(1_500);
    expect(outcomes()).toEqual(['timeout']);
    expect(reports[0]?.durationMs).toBeGreaterThanOrEqual(180);
    expect(logger.at('warn')[0]?.fields).toMatchObject({ outcome: 'timeout', err: 'no answer within 200 ms' });
  });

  it('slow body: the timeout covers the body too, not only the headers', async () => {
    start({ subscribe: { url: backend.url('/subscribe'), timeoutMs: 200 } });
    backend.on('/subscribe', (_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write('{"data":');
    });
    const error = await rejection(proxy.onSubscribe?.(subscribeContext('room')));
    expect(error).toMatchObject(UNAVAILABLE);
    expect(reports.map((report) => [report.outcome, report.status])).toEqual([['timeout', 200]]);
  });

  it.each<[string, Behaviour, Outcome, 'warn' | 'error', string]>([
    ['HTTP 500', json({ error: 'boom' }, 500), 'unavailable', 'warn', 'HTTP 500'],
    ['HTTP 503', json({}, 503), 'unavailable', 'warn', 'HTTP 503'],
    ['HTTP 404', json({}, 404), 'invalid', 'error', 'HTTP 404'],
    ['HTTP 401', json({}, 401), 'invalid', 'error', 'HTTP 401'],
    ['HTTP 302', (_q, r) => void r.writeHead(302, { location: '/elsewhere' }).end(), 'invalid', 'error', 'HTTP 302'],
    ['invalid JSON', (_q, r) => void r.writeHead(200).end('<html>oops</html>'), 'invalid', 'error', 'response body is not JSON'],
    ['an empty body', (_q, r) => void r.writeHead(200).end(), 'invalid', 'error', 'response body is not JSON'],
    ['a JSON array', json([1, 2]), 'invalid', 'error', 'response body is not a JSON object'],
    ['a reset connection', (_q, r) => void r.socket?.destroy(), 'unavailable', 'warn', 'request failed: UND_ERR_SOCKET'],
  ])('%s', async (_name, behaviour, outcome, level, detail) => {
    start();
    backend.on('/publish', behaviour);
    const error = await rejection(proxy.onPublish?.(publishContext('room', 'x')));
    expect(error).toMatchObject(UNAVAILABLE);
    expect(outcomes()).toEqual([outcome]);
    expect(logger.lines.map((line) => [line.level, line.fields.err])).toEqual([[level, detail]]);
  });

  it('a body over maxResponseBytes, declared by content-length: refused before reading', async () => {
    start({ maxResponseBytes: 1_024 });
    backend.on('/rpc', json({ result: 'x'.repeat(2_000) }));
    expect(await rejection(proxy.onRpc?.(rpcContext('m', 1)))).toMatchObject(UNAVAILABLE);
    expect(logger.at('error')[0]?.fields.err).toMatch(/^response of \d+ bytes, over maxResponseBytes 1024$/);
    backend.on('/rpc', json({ result: 'x'.repeat(1_000) }));
    expect(await proxy.onRpc?.(rpcContext('m', 1))).toBe('x'.repeat(1_000));
  });

  it('a body over maxResponseBytes, streamed: reading stops there, long before the timeout', async () => {
    start({ maxResponseBytes: 8_192, rpc: { url: backend.url('/rpc'), timeoutMs: 10_000 } });
    const closed: { at?: number; written: number } = { written: 0 };
    backend.on('/rpc', endless(closed));
    const started = Date.now();
    expect(await rejection(proxy.onRpc?.(rpcContext('m', 1)))).toMatchObject(UNAVAILABLE);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(logger.at('error')[0]?.fields.err).toBe('response over maxResponseBytes 8192');
    // The connection was dropped: the backend saw its response closed and stopped writing.
    for (let i = 0; i < 100 && closed.at === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(closed.at).toBeDefined();
    expect(closed.written).toBeLessThan(1024 * 1024);
  });

  it.each([
    [{ error: { code: 1000, reason: 'bye' } }, "'error.code' must be a close code 4000-4999, got 1000"],
    [{ error: { code: 5000 } }, "'error.code' must be a close code 4000-4999, got 5000"],
    [{ error: { code: 4403.5 } }, "'error.code' must be a close code 4000-4999, got 4403.5"],
    [{ error: { code: '4403' } }, "'error.code' must be a close code 4000-4999, got '4403'"],
    [{ error: { code: 4403, reason: 7 } }, "'error.reason' must be a string, got 7"],
    [{ topics: 'news' }, "'topics' must be an array of topics (1-256 characters)"],
    [{ topics: [''] }, "'topics' must be an array of topics (1-256 characters)"],
  ])('connect answer %j: a backend bug, so a 1013 close (retry later), logged at error', async (answer, detail) => {
    start();
    backend.on('/connect', json(answer));
    expect(await rejection(proxy.onConnect?.(connectContext()))).toMatchObject(UNAVAILABLE);
    expect(logger.lines.map((line) => [line.level, line.fields.err])).toEqual([['error', `invalid answer: ${detail}`]]);
  });

  it('concurrency cap: past maxConcurrency in flight, fails at once without a request', async () => {
    start({ rpc: { url: backend.url('/rpc'), maxConcurrency: 2 } });
    const gate = new Gate();
    backend.on('/rpc', gate.behaviour(json({ result: 'late' })));
    const first = proxy.onRpc?.(rpcContext('a', 1));
    const second = proxy.onRpc?.(rpcContext('b', 2));
    await backend.received('/rpc', 2);
    expect(proxy.inFlight('rpc')).toBe(2);
    expect(proxy.inFlight('connect')).toBe(0);
    const started = Date.now();
    expect(await rejection(proxy.onRpc?.(rpcContext('c', 3)))).toMatchObject(UNAVAILABLE);
    expect(Date.now() - started).toBeLessThan(100);
    expect(outcomes()).toEqual(['overloaded']);
    gate.open();
    expect(await Promise.all([first, second])).toEqual(['late', 'late']);
    expect(proxy.inFlight('rpc')).toBe(0);
    expect(backend.to('/rpc')).toHaveLength(2);
    expect(await proxy.onRpc?.(rpcContext('d', 4))).toBe('late');
  });
});

describe('the circuit breaker', () => {
  it('opens after N consecutive failures, fails fast for the cooldown, then lets one trial through', async () => {
    start({ breaker: { failures: 3, cooldownMs: 1_000 } });
    backend.on('/rpc', json({}, 503));
    for (let i = 0; i < 3; i++) await rejection(proxy.onRpc?.(rpcContext('m', i)));
    expect(logger.lines.filter((line) => line.message.includes('circuit opened'))).toHaveLength(1);
    expect(await rejection(proxy.onRpc?.(rpcContext('m', 3)))).toMatchObject(UNAVAILABLE);
    expect(backend.to('/rpc')).toHaveLength(3);
    clock.advance(999);
    await rejection(proxy.onRpc?.(rpcContext('m', 4)));
    expect(backend.to('/rpc')).toHaveLength(3);
    expect(outcomes()).toEqual(['unavailable', 'unavailable', 'unavailable', 'circuit_open', 'circuit_open']);

    // Half-open: one trial; while it is out, others still fail fast; its success closes the breaker.
    clock.advance(1);
    const gate = new Gate();
    backend.on('/rpc', gate.behaviour(json({ result: 'back' })));
    const trial = proxy.onRpc?.(rpcContext('m', 5));
    await backend.received('/rpc', 4);
    await rejection(proxy.onRpc?.(rpcContext('m', 6)));
    gate.open();
    expect(await trial).toBe('back');
    expect(await proxy.onRpc?.(rpcContext('m', 7))).toBe('back');
    expect(backend.to('/rpc')).toHaveLength(5);
    // Other endpoints have their own breakers.
    expect(reports.filter((report) => report.event !== 'rpc')).toEqual([]);
  });

  it('a failed trial opens it for another cooldown; other endpoints are not affected', async () => {
    start({ breaker: { failures: 2, cooldownMs: 500 } });
    backend.on('/subscribe', json({}, 500));
    for (let i = 0; i < 2; i++) await rejection(proxy.onSubscribe?.(subscribeContext('room')));
    clock.advance(500);
    await rejection(proxy.onSubscribe?.(subscribeContext('room')));
    expect(backend.to('/subscribe')).toHaveLength(3);
    await rejection(proxy.onSubscribe?.(subscribeContext('room')));
    expect(backend.to('/subscribe')).toHaveLength(3);
    expect(await proxy.onPublish?.(publishContext('room', 'x'))).toBe(true);
    clock.advance(500);
    backend.on('/subscribe', json({}));
    expect(await proxy.onSubscribe?.(subscribeContext('room'))).toBe(true);
    expect(outcomes()).toEqual(['unavailable', 'unavailable', 'unavailable', 'circuit_open', 'ok', 'ok']);
  });
});

describe('retries', () => {
  /** Fails the first `failures` requests with `status`, then answers `then`. */
  const flaky = (failures: number, status: number, then: unknown): Behaviour => {
    let seen = 0;
    return (request, response) => (++seen <= failures ? json({}, status) : json(then))(request, response);
  };

  it('refresh is retried once after a transient failure', async () => {
    start();
    backend.on('/refresh', flaky(1, 503, { data: 'second try' }));
    expect(await proxy.onConnect?.(connectContext({ refresh: true }))).toEqual({ data: 'second try' });
    const [first, second] = backend.to('/refresh');
    expect(second?.raw).toBe(first?.raw);
    expect(outcomes()).toEqual(['unavailable', 'ok']);
  });

  it('refresh is retried once only, and not after a backend bug or an open circuit', async () => {
    start({ breaker: { failures: 3, cooldownMs: 1_000 } });
    backend.on('/refresh', json({}, 503));
    expect(await rejection(proxy.onConnect?.(connectContext({ refresh: true })))).toMatchObject(UNAVAILABLE);
    expect(backend.to('/refresh')).toHaveLength(2);
    backend.on('/refresh', json({}, 400));
    await rejection(proxy.onConnect?.(connectContext({ refresh: true })));
    expect(backend.to('/refresh')).toHaveLength(3);
    await rejection(proxy.onConnect?.(connectContext({ refresh: true })));
    expect(backend.to('/refresh')).toHaveLength(3);
    expect(outcomes()).toEqual(['unavailable', 'unavailable', 'invalid', 'circuit_open']);
  });

  it('connect, subscribe, publish and rpc are not retried', async () => {
    start();
    backend.otherwise(json({}, 503));
    await rejection(proxy.onConnect?.(connectContext()));
    await rejection(proxy.onSubscribe?.(subscribeContext('t')));
    await rejection(proxy.onPublish?.(publishContext('t', 1)));
    await rejection(proxy.onRpc?.(rpcContext('m', 1)));
    expect(backend.requests.map((request) => request.path)).toEqual(['/connect', '/subscribe', '/publish', '/rpc']);
  });

  it('disconnect is retried once, never throws, and logs its failures at debug only', async () => {
    start({ disconnect: { url: backend.url('/disconnect'), timeoutMs: 100 } });
    backend.on('/disconnect', json({}, 502));
    proxy.onDisconnect?.(disconnectEvent(1001, 50));
    await backend.received('/disconnect', 2);
    backend.on('/disconnect', hang);
    proxy.onDisconnect?.(disconnectEvent(1001, 60));
    await backend.received('/disconnect', 4);
    await proxy.close();
    expect(outcomes()).toEqual(['unavailable', 'unavailable', 'timeout', 'timeout']);
    expect(logger.lines.map((line) => line.level)).toEqual(['debug', 'debug', 'debug', 'debug']);
    const down = await deadUrl();
    start({ disconnect: down });
    expect(() => proxy.onDisconnect?.(disconnectEvent())).not.toThrow();
    await until(() => reports.length === 2);
    expect(outcomes()).toEqual(['refused', 'refused']);
    // A retry due after close() is dropped: shutting down does not wait on a backend that is down.
    proxy.onDisconnect?.(disconnectEvent());
    await proxy.close();
    expect(outcomes()).toEqual(['refused', 'refused', 'refused']);
  });
});

describe('hygiene', () => {
  it('never logs the token, the secret, a request body or a response body', async () => {
    const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.the-frame-token-xyzzy.c2lnbmF0dXJl';
    const DATA = 'payload-marker-plugh';
    start({ rpc: { url: backend.url('/rpc'), timeoutMs: 150 }, maxResponseBytes: 4_096, breaker: { failures: 100 } });
    /** A backend that reflects what it was sent, in every broken way. */
    const reflect = (status: number, wrap: (raw: string) => string): Behaviour => (request, response) => {
      response.writeHead(status, { 'content-type': 'application/json' }).end(wrap(request.raw));
    };
    const behaviours: Behaviour[] = [
      reflect(500, (raw) => raw),
      reflect(400, (raw) => raw),
      reflect(200, (raw) => `${raw}garbage`),
      reflect(200, (raw) => JSON.stringify({ error: { message: raw, code: 'bogus' } })),
      reflect(200, (raw) => JSON.stringify({ result: raw.repeat(100) })),
      hang,
    ];
    for (const behaviour of behaviours) {
      backend.on('/rpc', behaviour);
      await rejection(proxy.onRpc?.(rpcContext('m', DATA, TOKEN)));
    }
    await proxy.close();
    start({ rpc: await deadUrl('/rpc') });
    await rejection(proxy.onRpc?.(rpcContext('m', DATA, TOKEN)));
    expect(reports).toHaveLength(1);
    expect(backend.to('/rpc')).toHaveLength(6);
    expect(backend.to('/rpc')[0]?.raw).toContain(TOKEN);
    const text = logger.text();
    expect(text).not.toBe('');
    for (const secret of [TOKEN, 'the-frame-token-xyzzy', SECRET, DATA]) expect(text).not.toContain(secret);
  });

  it('keeps connections alive: sequential requests reuse their connections', async () => {
    start();
    backend.on('/rpc', json({ result: 1 }));
    for (let i = 0; i < 20; i++) await proxy.onRpc?.(rpcContext('m', i));
    await proxy.onSubscribe?.(subscribeContext('room'));
    expect(backend.requests).toHaveLength(21);
    // undici may open a second socket while the first is being returned to the pool; not one per request.
    expect(backend.connections).toBeLessThanOrEqual(2);
  });

  it('reports every attempt with event, endpoint, outcome, status and duration; a throwing listener breaks nothing', async () => {
    start();
    proxy.on('request', () => {
      throw new Error('listener bug');
    });
    backend.on('/rpc', json({ result: 1 }));
    expect(await proxy.onRpc?.(rpcContext('m', 1))).toBe(1);
    expect(reports).toEqual([{ event: 'rpc', endpoint: 'rpc', outcome: 'ok', status: 200, durationMs: expect.any(Number) }]);
    expect(logger.at('warn').map((line) => line.message)).toEqual(["a 'request' listener threw"]);
  });

  it('close() waits for requests in flight, then refuses new ones without sending them', async () => {
    start();
    const gate = new Gate();
    backend.on('/rpc', gate.behaviour(json({ result: 'finished' })));
    const pending = proxy.onRpc?.(rpcContext('m', 1));
    await backend.received('/rpc');
    let closed = false;
    const closing = proxy.close().then(() => (closed = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(closed).toBe(false);
    expect(await rejection(proxy.onRpc?.(rpcContext('m', 2)))).toMatchObject(UNAVAILABLE);
    gate.open();
    expect(await pending).toBe('finished');
    await closing;
    expect(closed).toBe(true);
    expect(backend.to('/rpc')).toHaveLength(1);
  });
});
