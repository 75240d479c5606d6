import { decodeJwt } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { API_KEY, connectAs, login, SECRET, start, stopAll, subscribe, type TestGateway } from './helpers.js';

afterEach(stopAll);

const demo = () => start(['--demo', '--api-key', API_KEY]);

const notify = (gateway: TestGateway, token: string | undefined, json?: unknown) =>
  gateway.request('/demo/notify', {
    method: 'POST',
    ...(token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } }),
    ...(json === undefined ? {} : { json }),
  });

describe('chat in demo mode', () => {
  it("publishes a chat/send message on its topic as chat/posted, named after the sender's token, not its payload", async () => {
    const gateway = await demo();
    const alice = await connectAs(gateway, 'alice');
    const bob = await connectAs(gateway, 'bob');
    expect(await subscribe(alice.client, 'chat:lobby')).toMatchObject({ type: 'ack' });
    expect(await subscribe(bob.client, 'chat:lobby')).toMatchObject({ type: 'ack' });

    bob.client.send({ type: 'message', id: 'm1', data: { type: 'chat/send', payload: { topic: 'chat:lobby', text: '  hi all ', from: 'alice' } } });
    expect(await bob.client.next((frame) => frame.type === 'ack' && frame.id === 'm1')).toBeTruthy();
    for (const { client } of [alice, bob]) {
      const frame = await client.next((f) => f.type === 'message');
      expect(frame).toMatchObject({
        type: 'message',
        topic: 'chat:lobby',
        stream: 'topic:chat:lobby',
        offset: 1,
        data: { type: 'chat/posted', payload: { topic: 'chat:lobby', from: 'bob', text: 'hi all', id: expect.any(String), at: expect.any(Number) } },
      });
    }
  });

  const refused: [string, unknown][] = [
    ['another action', { type: 'chat/delete', payload: { topic: 'chat:lobby', text: 'x' } }],
    ['a topic outside chat:*', { type: 'chat/send', payload: { topic: 'admin', text: 'x' } }],
    ['an empty text', { type: 'chat/send', payload: { topic: 'chat:lobby', text: '   ' } }],
    ['a text over 500 characters', { type: 'chat/send', payload: { topic: 'chat:lobby', text: 'x'.repeat(501) } }],
    ['no payload', { type: 'chat/send' }],
    ['a string', 'hello'],
  ];
  for (const [name, data] of refused) {
    it(`rejects ${name} without publishing anything`, async () => {
      const gateway = await demo();
      const { client } = await connectAs(gateway, 'carol');
      await subscribe(client, 'chat:lobby');
      client.send({ type: 'message', id: 'm', data });
      expect(await client.next((frame) => frame.type === 'error')).toEqual({ type: 'error', id: 'm', code: 'rejected', message: 'message rejected' });
      client.send({ type: 'ping', id: 'p' });
      await client.next((frame) => frame.type === 'pong');
      expect(client.frames.filter((frame) => frame.type === 'message')).toEqual([]);
    });
  }

  it('refuses a publish from a client on a chat topic: only the gateway publishes there', async () => {
    const gateway = await demo();
    const { client } = await connectAs(gateway, 'alice');
    client.send({ type: 'publish', id: 'p1', topic: 'chat:lobby', data: { type: 'chat/posted', payload: { from: 'bob', text: 'forged' } } });
    expect(await client.next((frame) => frame.type === 'error' && frame.id === 'p1')).toMatchObject({ code: 'forbidden' });
  });
});

describe('POST /demo/notify', () => {
  it("pushes a notifications/added action to every connection of the token's user, and only theirs", async () => {
    const gateway = await demo();
    const first = await connectAs(gateway, 'alice');
    const second = await connectAs(gateway, 'alice');
    const bob = await connectAs(gateway, 'bob');

    const response = await notify(gateway, first.token);
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(await response.json()).toEqual({ deliveredLocally: 2 });
    for (const { client } of [first, second]) {
      expect(await client.next((frame) => frame.type === 'message')).toMatchObject({
        stream: 'user:alice',
        data: {
          type: 'notifications/added',
          payload: { id: expect.any(String), at: expect.any(Number), text: 'Hello alice: this was pushed to you by the backend.', via: 'POST /demo/notify' },
        },
      });
    }
    expect(await (await notify(gateway, first.token, { text: ' Your export is ready ' })).json()).toEqual({ deliveredLocally: 2 });
    expect(await first.client.next((frame) => frame.type === 'message' && frame.offset === 2)).toMatchObject({
      data: { payload: { text: 'Your export is ready' } },
    });
    bob.client.send({ type: 'ping', id: 'p' });
    await bob.client.next((frame) => frame.type === 'pong');
    expect(bob.client.frames.filter((frame) => frame.type === 'message')).toEqual([]);
  });

  it('refuses a missing or invalid token with 401, and a bad text with 400', async () => {
    const gateway = await demo();
    const token = await login(gateway, 'alice');
    for (const bearer of [undefined, 'garbage']) {
      const response = await notify(gateway, bearer);
      expect(response.status).toBe(401);
      expect(await response.json()).toEqual({ error: 'unauthorized' });
    }
    for (const json of [{ text: '' }, { text: 'x'.repeat(201) }, { text: 1 }, ['x']]) {
      const response = await notify(gateway, token, json);
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({ error: 'expected a body like {"text": "..."} of 1 to 200 characters, or none' });
    }
  });

  it('does not exist outside demo mode', async () => {
    const gateway = await start(['--jwt-secret', SECRET, '--api-key', API_KEY]);
    expect((await notify(gateway, 'whatever')).status).toBe(404);
  });
});

describe('POST /auth/refresh with expiresIn', () => {
  it('issues a token that lives that many seconds, for the same user', async () => {
    const gateway = await demo();
    const token = await login(gateway, 'bob');
    const response = await gateway.request('/auth/refresh', { headers: { authorization: `Bearer ${token}` }, json: { expiresIn: 5 } });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { user: string; token: string; expiresAt: number };
    const claims = decodeJwt(body.token);
    expect(claims.sub).toBe('bob');
    expect((claims.exp as number) - (claims.iat as number)).toBe(5);
    expect(body.expiresAt).toBe((claims.exp as number) * 1000);
  });

  it('refuses an expiresIn that is not a whole number of seconds from 1 to 120 with 400', async () => {
    const gateway = await demo();
    const token = await login(gateway, 'bob');
    for (const expiresIn of [0, 121, 2.5, '5', null]) {
      const response = await gateway.request('/auth/refresh', { headers: { authorization: `Bearer ${token}` }, json: { expiresIn } });
      expect({ expiresIn, status: response.status }).toEqual({ expiresIn, status: 400 });
      expect(await response.json()).toEqual({ error: 'expiresIn must be a whole number of seconds from 1 to 120' });
    }
  });
});
