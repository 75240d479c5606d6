import { afterEach, describe, expect, it } from 'vitest';
import { API_KEY, connectAs, SECRET, start, stopAll, subscribe } from './helpers.js';

afterEach(stopAll);

const demo = () => start(['--demo', '--api-key', API_KEY]);

describe('the HTTP API', () => {
  const routes: [string, string][] = [
    ['POST', '/api/users/alice/messages'],
    ['POST', '/api/topics/chat:lobby/messages'],
    ['POST', '/api/broadcast'],
    ['POST', '/api/users/alice/revoke'],
    ['GET', '/api/users/alice/connections'],
    ['GET', '/api/nowhere'],
  ];
  for (const [method, path] of routes) {
    it(`refuses ${method} ${path} without the API key, or with a wrong one, with 401`, async () => {
      const gateway = await demo();
      const body = method === 'POST' ? JSON.stringify({ data: 1 }) : undefined;
      const headers = { 'content-type': 'application/json' };
      for (const authorization of [undefined, 'Bearer wrong-key-of-some-length', `Basic ${API_KEY}`, `Bearer ${API_KEY}x`]) {
        const response = await gateway.request(path, {
          method,
          body,
          headers: authorization === undefined ? headers : { ...headers, authorization },
        });
        expect(response.status).toBe(401);
        expect(response.headers.get('www-authenticate')).toBe('Bearer');
        expect(await response.json()).toEqual({ error: 'unauthorized' });
      }
    });
  }

  it('delivers a message to every connection of a user logged in through /auth/login and /auth/ticket', async () => {
    const gateway = await demo();
    const first = await connectAs(gateway, 'alice');
    const second = await connectAs(gateway, 'alice');
    const bob = await connectAs(gateway, 'bob');

    const response = await gateway.request('/api/users/alice/messages', { apiKey: API_KEY, json: { data: { text: 'export ready' } } });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ delivered: 2 });
    for (const { client } of [first, second]) {
      expect(await client.next((frame) => frame.type === 'message')).toMatchObject({ type: 'message', data: { text: 'export ready' } });
    }
    // A round trip on bob's socket: had the push reached him, it would have arrived before the pong.
    bob.client.send({ type: 'ping', id: 'p' });
    await bob.client.next((frame) => frame.type === 'pong');
    expect(bob.client.frames.filter((frame) => frame.type === 'message')).toEqual([]);
  });

  it('publishes to the subscribers of a topic only', async () => {
    const gateway = await demo();
    const alice = await connectAs(gateway, 'alice');
    const bob = await connectAs(gateway, 'bob');
    expect(await subscribe(alice.client, 'chat:lobby')).toMatchObject({ type: 'ack' });

    const response = await gateway.request('/api/topics/chat:lobby/messages', { apiKey: API_KEY, json: { data: 'hello' } });
    expect(await response.json()).toEqual({ delivered: 1 });
    expect(await alice.client.next((frame) => frame.type === 'message')).toMatchObject({
      type: 'message',
      topic: 'chat:lobby',
      data: 'hello',
    });
    bob.client.send({ type: 'ping', id: 'p' });
    await bob.client.next((frame) => frame.type === 'pong');
    expect(bob.client.frames.filter((frame) => frame.type === 'message')).toEqual([]);
  });

  it('broadcasts to every authenticated connection', async () => {
    const gateway = await demo();
    const alice = await connectAs(gateway, 'alice');
    const carol = await connectAs(gateway, 'carol');
    const response = await gateway.request('/api/broadcast', { apiKey: API_KEY, json: { data: null } });
    expect(await response.json()).toEqual({ delivered: 2 });
    for (const { client } of [alice, carol]) {
      expect(await client.next((frame) => frame.type === 'message')).toMatchObject({ type: 'message', data: null });
    }
  });

  it('revokes a user: their sockets close 4403 and their tokens get no more tickets', async () => {
    const gateway = await demo();
    const alice = await connectAs(gateway, 'alice');
    const bob = await connectAs(gateway, 'bob');

    const response = await gateway.request('/api/users/alice/revoke', { apiKey: API_KEY, method: 'POST' });
    expect(await response.json()).toEqual({ closed: 1 });
    expect(await alice.client.closed).toEqual({ code: 4403, reason: 'revoked' });
    const refused = await gateway.request('/auth/ticket', { method: 'POST', headers: { authorization: `Bearer ${alice.token}` } });
    expect(refused.status).toBe(401);
    expect(bob.client.socket.readyState).toBe(bob.client.socket.OPEN);
  });

  it("counts a user's open connections", async () => {
    const gateway = await demo();
    const count = async (user: string) =>
      (await gateway.request(`/api/users/${user}/connections`, { apiKey: API_KEY })).json();
    expect(await count('alice')).toEqual({ count: 0 });
    const first = await connectAs(gateway, 'alice');
    await connectAs(gateway, 'alice');
    expect(await count('alice')).toEqual({ count: 2 });
    expect(await count('bob')).toEqual({ count: 0 });
    first.client.close();
    await first.client.closed;
    await expect.poll(() => count('alice')).toEqual({ count: 1 });
  });

  const badBodies: [string, Record<string, string>, string, number, string][] = [
    ['bad JSON', { 'content-type': 'application/json' }, '{"data": ', 400, 'invalid JSON body'],
    ['JSON without data', { 'content-type': 'application/json' }, '{"text": "hi"}', 400, 'expected Content-Type: application/json and a body like {"data": ...}'],
    ['a JSON array', { 'content-type': 'application/json' }, '[1]', 400, 'expected Content-Type: application/json and a body like {"data": ...}'],
    ['a text body', { 'content-type': 'text/plain' }, 'hi', 400, 'expected Content-Type: application/json and a body like {"data": ...}'],
    ['a body over 64 KiB', { 'content-type': 'application/json' }, JSON.stringify({ data: 'x'.repeat(70_000) }), 413, 'request body too large'],
  ];
  for (const [name, headers, body, status, error] of badBodies) {
    it(`answers ${name} with ${status} and a clear message`, async () => {
      const gateway = await demo();
      const response = await gateway.request('/api/broadcast', { apiKey: API_KEY, method: 'POST', headers, body });
      expect(response.status).toBe(status);
      expect(await response.json()).toEqual({ error });
    });
  }

  it('refuses a topic longer than the protocol allows', async () => {
    const gateway = await demo();
    const response = await gateway.request(`/api/topics/${'t'.repeat(257)}/messages`, { apiKey: API_KEY, json: { data: 1 } });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: 'topic must be 1 to 256 characters' });
  });

  it('is off without an API key outside demo mode', async () => {
    const gateway = await start(['--jwt-secret', SECRET]);
    const response = await gateway.request('/api/broadcast', { apiKey: API_KEY, json: { data: 1 } });
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: 'the HTTP API is off: start the gateway with --api-key' });
  });

  it('generates an API key in demo mode when none is configured', async () => {
    const gateway = await start(['--demo']);
    expect(gateway.generatedApiKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const response = await gateway.request('/api/users/alice/connections', { apiKey: gateway.generatedApiKey });
    expect(await response.json()).toEqual({ count: 0 });
  });
});

describe('the demo topics', () => {
  it('let every authenticated user use chat:* and nothing else', async () => {
    const gateway = await demo();
    const { client } = await connectAs(gateway, 'carol');
    expect(await subscribe(client, 'chat:random')).toMatchObject({ type: 'ack' });
    expect(await subscribe(client, 'admin')).toMatchObject({ type: 'error', code: 'forbidden' });
  });
});

describe('the site at /', () => {
  it('answers with a page in demo mode: the demo app once built, else the endpoint list (see site.test.ts)', async () => {
    const gateway = await demo();
    const response = await gateway.request('/');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
  });

  it('answers unknown paths with a JSON 404', async () => {
    const gateway = await demo();
    const response = await gateway.request('/nowhere');
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: 'not found' });
  });

  it('serves /healthz from the gateway', async () => {
    const gateway = await demo();
    expect(await (await gateway.request('/healthz')).json()).toEqual({
      status: 'ok',
      broker: 'ready',
      node: expect.any(String),
      connections: 0,
    });
  });
});
