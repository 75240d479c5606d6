import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHttpProxy, type HttpProxy, type HttpProxyOptions, verifySignature } from '../src/index.js';
import { Backend, CapturingLogger, deadUrl, hang, json } from './backend.js';
import { Client, type RunningGateway, startGateway } from './gateway.js';

// End to end: a real gateway (createGateway, a real HTTP server) with the proxy as its handler, real
// `ws` clients speaking authsocket.v1, and a real HTTP backend.

const SECRET = 'proxy-secret-that-is-at-least-32-bytes!';

let backend: Backend;
let proxy: HttpProxy;
let running: RunningGateway;
let clients: Client[];

async function start(options: Partial<HttpProxyOptions> = {}): Promise<void> {
  proxy = createHttpProxy({ secret: SECRET, nodeId: 'node-e2e', logger: new CapturingLogger(), ...options });
  running = await startGateway({ handler: proxy });
}

async function connect(sub = 'alice'): Promise<Client> {
  const client = await Client.auth(running.url, await running.token(sub, { tenant: 'acme' }));
  clients.push(client);
  return client;
}

beforeEach(async () => {
  backend = await Backend.start();
  clients = [];
});

afterEach(async () => {
  for (const client of clients) client.close();
  await running?.close();
  await proxy?.close();
  await backend.close();
});

describe('through the gateway', () => {
  it('connect: the backend adds auth_ok data and a server-side topic', async () => {
    await start({ connect: backend.url('/connect'), forwardClaims: ['tenant'] });
    backend.on('/connect', json({ data: { plan: 'pro' }, topics: ['announcements'] }));
    const client = await connect();
    const ok = await client.next('auth_ok');
    expect(ok).toMatchObject({ user: 'alice', data: { plan: 'pro' } });
    const [request] = backend.to('/connect');
    expect(request?.body).toMatchObject({ event: 'connect', identity: { user: 'alice', claims: { tenant: 'acme' }, node: 'node-e2e' } });
    expect(verifySignature(SECRET, request?.headers['authsocket-signature'], request?.raw ?? '').ok).toBe(true);
    expect(await running.gateway.publish('announcements', 'hello')).toBe(1);
    expect(await client.next('message')).toMatchObject({ topic: 'announcements', data: 'hello' });
  });

  it('connect refused with 4403: the client sees close 4403 and the reason', async () => {
    await start({ connect: backend.url('/connect') });
    backend.on('/connect', json({ error: { code: 4403, reason: 'banned' } }));
    const client = await connect();
    expect(await client.closedWithin()).toEqual({ code: 4403, reason: 'banned' });
    expect(client.frames.some((frame) => frame.type === 'auth_ok')).toBe(false);
  });

  it('connect backend down: close 1013 (try again later), not a refusal', async () => {
    await start({ connect: await deadUrl('/connect') });
    const client = await connect();
    expect(await client.closedWithin()).toEqual({ code: 1013, reason: 'backend unavailable' });
  });

  it('refresh: an in-band reauth asks the refresh URL; a backend outage keeps the verified token, a refusal closes', async () => {
    await start({ refresh: backend.url('/refresh'), retryDelayMs: 10 });
    const client = await connect();
    await client.next('auth_ok');
    expect(backend.requests).toHaveLength(0);
    backend.on('/refresh', json({}, 503));
    client.send({ type: 'auth', token: await running.token('alice') });
    expect(await client.nth('auth_ok', 2)).toMatchObject({ user: 'alice' });
    expect(backend.to('/refresh')).toHaveLength(2);
    expect(backend.to('/refresh')[0]?.body).toMatchObject({ event: 'refresh', identity: { user: 'alice' } });
    backend.on('/refresh', json({ error: { code: 4401, reason: 'session revoked' } }));
    client.send({ type: 'auth', token: await running.token('alice') });
    expect(await client.closedWithin()).toEqual({ code: 4401, reason: 'session revoked' });
  });

  it("rpc: the backend's result is the client's result frame", async () => {
    await start({ rpc: backend.url('/rpc') });
    backend.on('/rpc', (request, response) => json({ result: { sum: (request.body.data as number[]).reduce((a, b) => a + b, 0), method: request.body.method } })(request, response));
    const client = await connect();
    await client.next('auth_ok');
    client.send({ type: 'rpc', id: 'r1', method: 'sum', data: [1, 2, 3] });
    expect(await client.next('result')).toEqual({ type: 'result', id: 'r1', data: { sum: 6, method: 'sum' } });
  });

  it('rpc backend timeout: error unavailable/temporary, the socket stays open, other connections keep working', async () => {
    await start({ rpc: { url: backend.url('/rpc'), timeoutMs: 300 } });
    backend.on('/rpc', (request, response) => (request.body.method === 'slow' ? hang(request, response) : json({ result: 'fast' })(request, response)));
    const [slow, other] = [await connect('alice'), await connect('bob')];
    await Promise.all([slow.next('auth_ok'), other.next('auth_ok')]);
    slow.send({ type: 'rpc', id: 's1', method: 'slow' });
    // While alice's call hangs, bob's calls (and alice's own next frames) are answered.
    await backend.received('/rpc', 1);
    other.send({ type: 'rpc', id: 'o1', method: 'quick' });
    expect(await other.next('result')).toEqual({ type: 'result', id: 'o1', data: 'fast' });
    await slow.ping();
    expect(await slow.next('error', (frame) => frame.id === 's1')).toEqual({
      type: 'error',
      id: 's1',
      code: 'unavailable',
      message: 'backend unavailable',
      temporary: true,
    });
    expect(slow.open).toBe(true);
    slow.send({ type: 'rpc', id: 's2', method: 'quick' });
    expect(await slow.next('result', (frame) => frame.id === 's2')).toMatchObject({ data: 'fast' });
  });

  it('no rpc URL: rpc answers not_found', async () => {
    await start({ connect: backend.url('/connect') });
    const client = await connect();
    await client.next('auth_ok');
    client.send({ type: 'rpc', id: 'r1', method: 'sum' });
    expect(await client.next('error')).toMatchObject({ id: 'r1', code: 'not_found' });
  });

  it('subscribe denied: an error frame with the backend data, not a disconnect', async () => {
    await start({ subscribe: backend.url('/subscribe') });
    backend.on('/subscribe', (request, response) =>
      json(request.body.topic === 'vip' ? { error: { message: 'members only', data: { upgrade: '/plans' } } } : { data: { welcome: true } })(request, response),
    );
    const client = await connect();
    await client.next('auth_ok');
    client.send({ type: 'subscribe', topic: 'vip', id: 's1' });
    expect(await client.next('error')).toMatchObject({ id: 's1', code: 'forbidden', data: { upgrade: '/plans' } });
    client.send({ type: 'subscribe', topic: 'lobby', id: 's2' });
    expect(await client.next('ack', (frame) => frame.id === 's2')).toMatchObject({ data: { welcome: true } });
    await client.ping();
    expect(client.open).toBe(true);
    expect(await running.gateway.publish('vip', 'secret')).toBe(0);
  });

  it('publish transformed: subscribers get the data the backend answered', async () => {
    await start({ publish: backend.url('/publish') });
    backend.on('/publish', (request, response) =>
      json({ data: { text: String(request.body.data).toUpperCase(), by: (request.body.identity as { user: string }).user } })(request, response),
    );
    const [reader, writer] = [await connect('bob'), await connect('alice')];
    await Promise.all([reader.next('auth_ok'), writer.next('auth_ok')]);
    reader.send({ type: 'subscribe', topic: 'room', id: 'sub' });
    await reader.next('ack');
    writer.send({ type: 'publish', topic: 'room', data: 'hello', id: 'p1' });
    expect(await writer.next('ack', (frame) => frame.id === 'p1')).toBeDefined();
    expect(await reader.next('message')).toMatchObject({ topic: 'room', data: { text: 'HELLO', by: 'alice' } });
  });

  it('disconnect: the backend hears the close code and how long the connection lived', async () => {
    await start({ disconnect: backend.url('/disconnect') });
    const client = await connect();
    await client.next('auth_ok');
    await new Promise((resolve) => setTimeout(resolve, 100));
    client.close(4000);
    const [request] = await backend.received('/disconnect');
    expect(request?.body).toMatchObject({ event: 'disconnect', code: 4000, identity: { user: 'alice', node: 'node-e2e' } });
    expect(request?.body.durationMs).toBeGreaterThanOrEqual(90);
    expect(request?.body.durationMs).toBeLessThan(5_000);
  });
});
