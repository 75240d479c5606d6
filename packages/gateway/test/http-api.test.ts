import { afterEach, describe, expect, it } from 'vitest';
import { API_KEY, connectAs, SECRET, start, stopAll, subscribe, type TestClient, type TestGateway } from './helpers.js';

afterEach(stopAll);

const demo = () => start(['--demo', '--api-key', API_KEY, '--node-id', 'gw-test']);

describe('GET /api/topics/:topic/presence', () => {
  const withPresence = (...flags: string[]) => start(['--demo', '--api-key', API_KEY, '--presence', '--presence-topics', 'chat:*', ...flags]);

  it('lists who is subscribed to a topic, with the count, and the count alone with ?countOnly=true', async () => {
    const gateway = await withPresence();
    const alice = await connectAs(gateway, 'alice');
    const bob = await connectAs(gateway, 'bob');
    for (const { client } of [alice, bob]) expect(await subscribe(client, 'chat:lobby')).toMatchObject({ type: 'ack' });
    const response = await gateway.request('/api/topics/chat:lobby/presence', { apiKey: API_KEY });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { topic: string; count: number; members: { user: string; connection: string }[] };
    expect(body.topic).toBe('chat:lobby');
    expect(body.count).toBe(2);
    expect(body.members.map((member) => member.user).sort()).toEqual(['alice', 'bob']);
    const counted = await gateway.request('/api/topics/chat:lobby/presence?countOnly=true', { apiKey: API_KEY });
    expect(await counted.json()).toEqual({ topic: 'chat:lobby', count: 2 });
    const nobody = await gateway.request('/api/topics/chat:empty/presence', { apiKey: API_KEY });
    expect(await nobody.json()).toEqual({ topic: 'chat:empty', count: 0, members: [] });
  });

  it('answers 404 for a topic without presence, 400 for a bad countOnly or topic, 401 without the key', async () => {
    const gateway = await withPresence();
    const outside = await gateway.request('/api/topics/news/presence', { apiKey: API_KEY });
    expect(outside.status).toBe(404);
    expect(await outside.json()).toEqual({ error: "topic 'news' has no presence (see --presence, --presence-topics)" });
    const bad = await gateway.request('/api/topics/chat:lobby/presence?countOnly=yes', { apiKey: API_KEY });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: 'countOnly must be true or false' });
    const long = await gateway.request(`/api/topics/${'t'.repeat(300)}/presence`, { apiKey: API_KEY });
    expect(long.status).toBe(400);
    expect((await gateway.request('/api/topics/chat:lobby/presence')).status).toBe(401);
  });

  it('answers 404 when presence is off (the default)', async () => {
    const gateway = await demo();
    const response = await gateway.request('/api/topics/chat:lobby/presence', { apiKey: API_KEY });
    expect(response.status).toBe(404);
  });
});

describe('the HTTP API', () => {
  const routes: [string, string][] = [
    ['POST', '/api/users/alice/messages'],
    ['POST', '/api/topics/chat:lobby/messages'],
    ['POST', '/api/broadcast'],
    ['POST', '/api/users/alice/revoke'],
    ['GET', '/api/users/alice/connections'],
    ['GET', '/api/connections/00000000-0000-4000-8000-000000000000'],
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
    expect(await response.json()).toEqual({ deliveredLocally: 2, node: 'gw-test' });
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
    expect(await response.json()).toEqual({ deliveredLocally: 1, node: 'gw-test' });
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
    expect(await response.json()).toEqual({ deliveredLocally: 2, node: 'gw-test' });
    for (const { client } of [alice, carol]) {
      expect(await client.next((frame) => frame.type === 'message')).toMatchObject({ type: 'message', data: null });
    }
  });

  it('revokes a user: their sockets close 4403 and their tokens get no more tickets', async () => {
    const gateway = await demo();
    const alice = await connectAs(gateway, 'alice');
    const bob = await connectAs(gateway, 'bob');

    const response = await gateway.request('/api/users/alice/revoke', { apiKey: API_KEY, method: 'POST' });
    expect(await response.json()).toEqual({ closedLocally: 1, node: 'gw-test' });
    expect(await alice.client.closed).toEqual({ code: 4403, reason: 'revoked' });
    const refused = await gateway.request('/auth/ticket', { method: 'POST', headers: { authorization: `Bearer ${alice.token}` } });
    expect(refused.status).toBe(401);
    expect(bob.client.socket.readyState).toBe(bob.client.socket.OPEN);
  });

  it("lists a user's connections with their token expiry, and counts them", async () => {
    const gateway = await demo();
    const list = async (user: string) =>
      (await gateway.request(`/api/users/${user}/connections`, { apiKey: API_KEY })).json() as Promise<Record<string, unknown>>;
    expect(await list('alice')).toEqual({ connections: [], count: 0, connectedLocally: 0, node: 'gw-test' });
    const first = await connectAs(gateway, 'alice');
    await connectAs(gateway, 'alice');
    const listed = await list('alice');
    expect(listed).toMatchObject({ count: 2, connectedLocally: 2, node: 'gw-test' });
    const connections = listed.connections as Array<Record<string, unknown>>;
    expect(connections).toHaveLength(2);
    for (const connection of connections) {
      expect(connection).toEqual({
        id: expect.any(String),
        user: 'alice',
        node: 'gw-test',
        openedAt: expect.any(Number),
        expiresAt: expect.any(Number),
        state: 'authenticated',
      });
      expect(connection.expiresAt as number).toBeGreaterThan(connection.openedAt as number);
    }
    expect(await list('bob')).toEqual({ connections: [], count: 0, connectedLocally: 0, node: 'gw-test' });
    first.client.close();
    await first.client.closed;
    await expect.poll(async () => (await list('alice')).count).toBe(1);
  });

  it('answers GET /api/connections/:id with the record, 404 for an unknown id and 400 for a malformed one', async () => {
    const gateway = await demo();
    await connectAs(gateway, 'alice');
    const [listed] = ((await (await gateway.request('/api/users/alice/connections', { apiKey: API_KEY })).json()) as {
      connections: Array<{ id: string }>;
    }).connections;
    const found = await gateway.request(`/api/connections/${listed?.id}`, { apiKey: API_KEY });
    expect(found.status).toBe(200);
    expect(await found.json()).toEqual(listed);
    const unknown = await gateway.request(`/api/connections/${globalThis.crypto.randomUUID()}`, { apiKey: API_KEY });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ error: 'no such connection' });
    const malformed = await gateway.request('/api/connections/not%20an%20id', { apiKey: API_KEY });
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toEqual({ error: 'connection id must be the id the gateway gave the connection' });
  });

  it('lists this node\'s connections alone with --registry off', async () => {
    const gateway = await start(['--demo', '--api-key', API_KEY, '--node-id', 'gw-test', '--registry', 'off']);
    await connectAs(gateway, 'alice');
    const listed = (await (await gateway.request('/api/users/alice/connections', { apiKey: API_KEY })).json()) as Record<string, unknown>;
    expect(listed).toMatchObject({ count: 1, connectedLocally: 1, node: 'gw-test', connections: [{ user: 'alice', node: 'gw-test' }] });
  });

  /** Each publishing route, and a client of alice's that its message reaches. */
  const publishRoutes: [string, (gateway: TestGateway) => Promise<TestClient>][] = [
    ['/api/users/alice/messages', async (gateway) => (await connectAs(gateway, 'alice')).client],
    ['/api/topics/chat:lobby/messages', async (gateway) => {
      const { client } = await connectAs(gateway, 'alice');
      await subscribe(client, 'chat:lobby');
      return client;
    }],
    ['/api/broadcast', async (gateway) => (await connectAs(gateway, 'alice')).client],
  ];
  for (const [path, listener] of publishRoutes) {
    it(`delivers a POST ${path} retried with the same Idempotency-Key once`, async () => {
      const gateway = await demo();
      const client = await listener(gateway);
      const post = (key: string, data: string) =>
        gateway.request(path, { apiKey: API_KEY, json: { data }, headers: { 'idempotency-key': key } });

      expect(await (await post('order-42', 'first')).json()).toEqual({ deliveredLocally: 1, node: 'gw-test' });
      expect(await (await post('order-42', 'retry')).json()).toEqual({ deliveredLocally: 0, node: 'gw-test' });
      expect(await (await post('order-43', 'second')).json()).toEqual({ deliveredLocally: 1, node: 'gw-test' });
      await client.next((frame) => frame.type === 'message' && frame.data === 'second');
      expect(client.frames.filter((frame) => frame.type === 'message').map((frame) => frame.data)).toEqual(['first', 'second']);
    });
  }

  it('scopes an Idempotency-Key to its audience: the same key for another user is delivered', async () => {
    const gateway = await demo();
    const bob = await connectAs(gateway, 'bob');
    const post = (user: string) =>
      gateway.request(`/api/users/${user}/messages`, { apiKey: API_KEY, json: { data: user }, headers: { 'idempotency-key': 'k' } });
    await post('alice');
    expect(await (await post('bob')).json()).toEqual({ deliveredLocally: 1, node: 'gw-test' });
    expect(await bob.client.next((frame) => frame.type === 'message')).toMatchObject({ data: 'bob' });
  });

  const badKeys: [string, string][] = [
    ['an empty key', ''],
    ['a key with a space', 'order 42'],
    ['a key of 256 characters', 'k'.repeat(256)],
    ['a key beyond ASCII', 'caf\u00e9'],
  ];
  for (const [name, key] of badKeys) {
    it(`refuses ${name} in Idempotency-Key with 400 naming the header, delivering nothing`, async () => {
      const gateway = await demo();
      const alice = await connectAs(gateway, 'alice');
      for (const path of ['/api/users/alice/messages', '/api/topics/chat:lobby/messages', '/api/broadcast']) {
        const response = await gateway.request(path, { apiKey: API_KEY, json: { data: 1 }, headers: { 'idempotency-key': key } });
        expect(response.status).toBe(400);
        expect(await response.json()).toEqual({ error: 'Idempotency-Key must be 1 to 255 visible ASCII characters' });
      }
      alice.client.send({ type: 'ping', id: 'p' });
      await alice.client.next((frame) => frame.type === 'pong');
      expect(alice.client.frames.filter((frame) => frame.type === 'message')).toEqual([]);
    });
  }

  it('accepts a key of 255 visible ASCII characters', async () => {
    const gateway = await demo();
    const key = '!~'.repeat(127) + 'x';
    const response = await gateway.request('/api/broadcast', { apiKey: API_KEY, json: { data: 1 }, headers: { 'idempotency-key': key } });
    expect(response.status).toBe(200);
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
    expect(await response.json()).toEqual({ connections: [], count: 0, connectedLocally: 0, node: expect.any(String) });
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

describe('POST /api/messages (batch)', () => {
  it('publishes every message to its audience, answering each result in order', async () => {
    const gateway = await demo();
    const alice = await connectAs(gateway, 'alice');
    const bob = await connectAs(gateway, 'bob');
    expect(await subscribe(bob.client, 'chat:lobby')).toMatchObject({ type: 'ack' });

    const response = await gateway.request('/api/messages', {
      apiKey: API_KEY,
      json: {
        messages: [
          { to: { user: 'alice' }, data: { n: 1 } },
          { to: { topic: 'chat:lobby' }, data: { n: 2 } },
          { to: { everyone: true }, data: { n: 3 } },
          { to: { connection: '00000000-0000-4000-8000-000000000000' }, data: { n: 4 } },
          { to: { user: 'nobody' }, data: { n: 5 }, idempotencyKey: 'k-5' },
        ],
      },
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      results: [{ deliveredLocally: 1 }, { deliveredLocally: 1 }, { deliveredLocally: 2 }, { deliveredLocally: 0 }, { deliveredLocally: 0 }],
      node: 'gw-test',
    });
    expect(await alice.client.next((f) => f.type === 'message' && (f.data as { n: number }).n === 1)).toMatchObject({ data: { n: 1 } });
    expect(await alice.client.next((f) => f.type === 'message' && (f.data as { n: number }).n === 3)).toMatchObject({ data: { n: 3 } });
    expect(await bob.client.next((f) => f.type === 'message' && f.topic === 'chat:lobby')).toMatchObject({ data: { n: 2 } });
    expect(await bob.client.next((f) => f.type === 'message' && (f.data as { n: number }).n === 3)).toMatchObject({ data: { n: 3 } });
    // Bob got the topic message and the broadcast, nothing meant for alice.
    bob.client.send({ type: 'ping', id: 'p' });
    await bob.client.next((frame) => frame.type === 'pong');
    expect(bob.client.frames.filter((frame) => frame.type === 'message')).toHaveLength(2);
  });

  it('applies each message’s idempotency key on its own', async () => {
    const gateway = await demo();
    const alice = await connectAs(gateway, 'alice');
    const message = { to: { user: 'alice' }, data: 'once', idempotencyKey: 'batch-key-1' };
    const first = await gateway.request('/api/messages', { apiKey: API_KEY, json: { messages: [message, message] } });
    expect(await first.json()).toEqual({ results: [{ deliveredLocally: 1 }, { deliveredLocally: 0 }], node: 'gw-test' });
    alice.client.send({ type: 'ping', id: 'p' });
    await alice.client.next((frame) => frame.type === 'pong');
    expect(alice.client.frames.filter((frame) => frame.type === 'message')).toHaveLength(1);
  });

  it('answers an empty batch with no results', async () => {
    const gateway = await demo();
    const response = await gateway.request('/api/messages', { apiKey: API_KEY, json: { messages: [] } });
    expect(await response.json()).toEqual({ results: [], node: 'gw-test' });
  });

  const invalid: [string, unknown, string][] = [
    ['no messages array', { data: 1 }, 'expected Content-Type: application/json and a body like {"messages": [{"to": {...}, "data": ...}]}'],
    ['a message that is not an object', { messages: [{ to: { user: 'a' }, data: 1 }, 7] }, 'messages[1]: expected {"to": {...}, "data": ...}'],
    ['no data', { messages: [{ to: { user: 'a' } }] }, 'messages[0].data: missing'],
    ['an unknown audience', { messages: [{ to: { user: 'a' }, data: 1 }, { to: { group: 'g' }, data: 1 }] }, 'messages[1].to: expected {"user": ...}, {"topic": ...}, {"connection": ...} or {"everyone": true}'],
    ['two audiences', { messages: [{ to: { user: 'a', topic: 't' }, data: 1 }] }, 'messages[0].to: expected {"user": ...}, {"topic": ...}, {"connection": ...} or {"everyone": true}'],
    ['an empty user', { messages: [{ to: { user: '' }, data: 1 }] }, 'messages[0].to.user: must be 1 to 256 characters'],
    ['a topic too long', { messages: [{ to: { topic: 'x'.repeat(1_000) }, data: 1 }] }, 'messages[0].to.topic: must be 1 to'],
    ['a malformed connection id', { messages: [{ to: { connection: 'abc' }, data: 1 }] }, 'messages[0].to.connection: must be the id the gateway gave the connection'],
    ['everyone not true', { messages: [{ to: { everyone: 1 }, data: 1 }] }, 'messages[0].to.everyone: must be true'],
    ['a bad idempotency key', { messages: [{ to: { user: 'a' }, data: 1 }, { to: { user: 'a' }, data: 1, idempotencyKey: 'has space' }] }, 'messages[1].idempotencyKey: must be 1 to 255 visible ASCII characters'],
    ['data over 64 KiB', { messages: [{ to: { user: 'a' }, data: 'x'.repeat(70_000) }] }, 'messages[0].data: must be JSON of at most 64 KiB'],
  ];
  for (const [what, body, error] of invalid) {
    it(`refuses ${what} with 400 naming the message, publishing none`, async () => {
      const gateway = await demo();
      const alice = await connectAs(gateway, 'alice');
      const response = await gateway.request('/api/messages', { apiKey: API_KEY, json: body });
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: string }).error).toContain(error);
      alice.client.send({ type: 'ping', id: 'p' });
      await alice.client.next((frame) => frame.type === 'pong');
      expect(alice.client.frames.filter((frame) => frame.type === 'message')).toEqual([]);
    });
  }

  it('refuses more than 1,000 messages with 413', async () => {
    const gateway = await demo();
    const messages = Array.from({ length: 1_001 }, () => ({ to: { everyone: true }, data: 1 }));
    const response = await gateway.request('/api/messages', { apiKey: API_KEY, json: { messages } });
    expect(response.status).toBe(413);
    expect(await response.json()).toEqual({ error: 'at most 1000 messages per request' });
  });

  it('refuses it without the API key', async () => {
    const gateway = await demo();
    const response = await gateway.request('/api/messages', { json: { messages: [] } });
    expect(response.status).toBe(401);
  });
});
