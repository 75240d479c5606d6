import type { ServerMessage } from '@authsocket/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import type { MessageHandler, SubscribeContext } from '../src/core/ports.js';
import { startServer, type TestServer, TestSocket, type TokenSpec } from './helpers.js';

/** Permissions from the token, subscription tokens and reauth re-checks, over real sockets against a real gateway. */

let server: TestServer | undefined;
const sockets: TestSocket[] = [];

async function start(options: Parameters<typeof startServer>[0] = {}): Promise<TestServer> {
  server = await startServer(options);
  return server;
}

/** An authenticated socket whose token (an hour long, so the clock can move) carries `claims`. */
async function connect(target: TestServer, user = 'alice', claims: TokenSpec['claims'] = {}): Promise<TestSocket> {
  const socket = await TestSocket.open(target.wsUrl);
  sockets.push(socket);
  socket.send({ type: 'auth', token: await target.token(user, { claims, expiresIn: 3_600 }) });
  await socket.next('auth_ok');
  return socket;
}

/** Sends a request with an `id` and waits (bounded: 5 s) for its answer: `ack`, `error` or `pong`. */
async function request(socket: TestSocket, frame: Record<string, unknown>): Promise<ServerMessage> {
  const id = `r${Math.random().toString(36).slice(2)}`;
  socket.send({ ...frame, id });
  for (let attempt = 0; attempt < 500; attempt += 1) {
    const found = socket.frames.find((candidate) => 'id' in candidate && candidate.id === id);
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`no answer to ${String(frame.type)} ${id}`);
}

const subscribe = (socket: TestSocket, topic: string, token?: string) =>
  request(socket, { type: 'subscribe', topic, ...(token === undefined ? {} : { token }) });

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await server?.close();
  server = undefined;
});

describe('permission rules', () => {
  it("let each user subscribe to their own 'user:{sub}:*' topics and to no one else's", async () => {
    const target = await start({ permissions: [{ topics: 'user:{sub}:*', allow: ['subscribe', 'presence'] }] });
    const alice = await connect(target, 'alice');
    expect(await subscribe(alice, 'user:alice:inbox')).toMatchObject({ type: 'ack' });
    expect(await subscribe(alice, 'user:bob:inbox')).toMatchObject({
      type: 'error',
      code: 'forbidden',
      message: "not allowed to subscribe to 'user:bob:inbox'",
    });
    expect(await target.gateway.publish('user:alice:inbox', 'hi')).toBe(1);
    expect((await alice.next('message')).data).toBe('hi');
    expect(await target.gateway.publish('user:bob:inbox', 'secret')).toBe(0);
  });

  it('decide publish by its own action and a `when` claim; `authorize` is no longer asked', async () => {
    const asked: string[] = [];
    const target = await start({
      permissions: [
        { topics: 'chat:*', allow: ['subscribe'] },
        { topics: 'chat:*', allow: ['publish'], when: { role: 'admin' } },
      ],
      authorize: (_user, action, topic) => {
        asked.push(`${action} ${topic}`);
        return true;
      },
    });
    const user = await connect(target, 'alice', { role: 'user' });
    const admin = await connect(target, 'root', { role: 'admin' });
    expect(await subscribe(user, 'chat:general')).toMatchObject({ type: 'ack' });
    expect(await request(user, { type: 'publish', topic: 'chat:general', data: 'x' })).toMatchObject({
      type: 'error',
      code: 'forbidden',
      message: "not allowed to publish to 'chat:general'",
    });
    expect(await request(admin, { type: 'publish', topic: 'chat:general', data: 'announcement' })).toMatchObject({ type: 'ack' });
    expect((await user.next('message')).data).toBe('announcement');
    expect(await subscribe(user, 'other')).toMatchObject({ type: 'error', code: 'forbidden' });
    expect(asked).toEqual([]);
  });

  it("run the handler's onSubscribe after their yes (its verdict is final), and never after their no", async () => {
    const seen: string[] = [];
    const handler: MessageHandler = {
      onSubscribe: ({ topic }: SubscribeContext) => {
        seen.push(topic);
        return topic === 'room:closed' ? false : { allow: true, data: { welcome: topic } };
      },
    };
    const target = await start({ handler, permissions: [{ topics: 'room:*', allow: ['subscribe'] }] });
    const socket = await connect(target);
    expect(await subscribe(socket, 'room:1')).toMatchObject({ type: 'ack', data: { welcome: 'room:1' } });
    expect(await subscribe(socket, 'room:closed')).toMatchObject({ type: 'error', code: 'forbidden' });
    expect(await subscribe(socket, 'elsewhere')).toMatchObject({ type: 'error', code: 'forbidden' });
    expect(seen).toEqual(['room:1', 'room:closed']);
  });
});

describe('a claim of patterns (permissionsClaim)', () => {
  it('allows what the token lists and nothing else', async () => {
    const target = await start({ permissionsClaim: 'topics' });
    const socket = await connect(target, 'alice', { topics: { subscribe: ['team:*'], publish: ['team:blue'] } });
    expect(await subscribe(socket, 'team:blue')).toMatchObject({ type: 'ack' });
    expect(await request(socket, { type: 'publish', topic: 'team:blue', data: 1 })).toMatchObject({ type: 'ack' });
    expect(await request(socket, { type: 'publish', topic: 'team:red', data: 1 })).toMatchObject({ type: 'error', code: 'forbidden' });
    expect(await subscribe(socket, 'news')).toMatchObject({ type: 'error', code: 'forbidden' });
  });

  it('refuses every request with an error frame saying the claim is malformed, and keeps the connection', async () => {
    const target = await start({ permissionsClaim: 'topics' });
    const cases: Array<[unknown, string]> = [
      ['team:*', "claim 'topics' is malformed: expected an array of patterns or { subscribe, publish, presence }, got 'team:*'"],
      [['team:*:x*'], "claim 'topics' is malformed: pattern 'team:*:x*' has '*' before its end: a wildcard may only end a pattern"],
      [{ subscribe: ['*team'] }, "claim 'topics' is malformed: subscribe: pattern '*team' has '*' before its end: a wildcard may only end a pattern"],
    ];
    for (const [value, message] of cases) {
      const socket = await connect(target, 'alice', { topics: value as never });
      expect(await subscribe(socket, 'team:blue')).toMatchObject({ type: 'error', code: 'forbidden', message });
      expect(await request(socket, { type: 'publish', topic: 'team:blue', data: 1 })).toMatchObject({ type: 'error', code: 'forbidden', message });
      expect(await request(socket, { type: 'ping' })).toMatchObject({ type: 'pong' });
    }
  });
});

describe('per-message mode', () => {
  it("checks a publish against the claims of the frame's own token", async () => {
    const target = await start({ perMessageAuth: true, permissionsClaim: 'topics' });
    const socket = await connect(target, 'alice', { topics: { publish: ['a'] } });
    const token = await target.token('alice', { expiresIn: 3_600, claims: { topics: { publish: ['b'] } } });
    expect(await request(socket, { type: 'publish', topic: 'b', data: 1, token })).toMatchObject({ type: 'ack' });
    expect(await request(socket, { type: 'publish', topic: 'a', data: 1, token })).toMatchObject({ type: 'error', code: 'forbidden' });
  });
});

describe('subscription tokens', () => {
  /** A gateway where nothing may be subscribed without a subscription token. */
  const closed = () => start({ authorize: () => false });
  const subscriptionToken = (target: TestServer, topic: unknown, spec: TokenSpec = {}) =>
    target.token(spec.sub ?? 'alice', { expiresIn: 60, ...spec, claims: { topic, ...spec.claims } });

  it('are never accepted as connection tokens: not in `auth`, not on a message in per-message mode', async () => {
    const target = await closed();
    const socket = await TestSocket.open(target.wsUrl);
    sockets.push(socket);
    socket.send({ type: 'auth', token: await subscriptionToken(target, 'private:1') });
    expect(await socket.closed).toEqual({ code: 4401, reason: 'invalid token' });
    await server?.close();
    const perMessage = await start({ perMessageAuth: true, authorize: () => false });
    const other = await TestSocket.open(perMessage.wsUrl);
    sockets.push(other);
    other.send({ type: 'message', data: 1, token: await subscriptionToken(perMessage, 'private:1') });
    expect(await other.closed).toEqual({ code: 4401, reason: 'invalid token' });
  });

  it("grant the topic they name to the connection's user, and end it with `unsubscribed {reason: 'expired'}` at their exp", async () => {
    const target = await closed();
    const socket = await connect(target);
    expect(await subscribe(socket, 'private:1')).toMatchObject({ type: 'error', code: 'forbidden' });
    expect(await subscribe(socket, 'private:1', await subscriptionToken(target, 'private:1'))).toMatchObject({ type: 'ack' });
    expect(await target.gateway.publish('private:1', 'inside')).toBe(1);
    expect((await socket.next('message')).data).toBe('inside');
    target.clock.advance(59_000);
    await socket.settle();
    expect(socket.frames.some((frame) => frame.type === 'unsubscribed')).toBe(false);
    target.clock.advance(1_000);
    expect(await socket.next('unsubscribed')).toEqual({
      type: 'unsubscribed',
      topic: 'private:1',
      reason: 'expired',
      message: 'subscription token expired',
    });
    expect(await target.gateway.publish('private:1', 'after')).toBe(0);
  });

  it('are renewed by subscribing again with a fresher one: the position stays, the new expiry applies', async () => {
    const target = await closed();
    const socket = await connect(target);
    const first = await subscribe(socket, 'private:1', await subscriptionToken(target, 'private:1'));
    await target.gateway.publish('private:1', 'one');
    target.clock.advance(30_000);
    const renewed = await subscribe(socket, 'private:1', await subscriptionToken(target, 'private:1', { expiresIn: 120 }));
    expect(renewed).toMatchObject({ type: 'ack', streams: { 'topic:private:1': { offset: 1 } } });
    expect(first).toMatchObject({ streams: { 'topic:private:1': { offset: 0 } } });
    target.clock.advance(60_000);
    await socket.settle();
    expect(socket.frames.filter((frame) => frame.type === 'unsubscribed')).toEqual([]);
    expect(await target.gateway.publish('private:1', 'still')).toBe(1);
    target.clock.advance(60_000);
    expect(await socket.next('unsubscribed')).toMatchObject({ topic: 'private:1', reason: 'expired' });
  });

  it('never shorten how a topic is held: a claimed topic outlives a token, an earlier exp does not replace a later one', async () => {
    const target = await start({ subscribeClaim: 'channels', authorize: () => false });
    const socket = await connect(target, 'alice', { channels: ['news'] });
    expect(await subscribe(socket, 'news', await subscriptionToken(target, 'news', { expiresIn: 60 }))).toMatchObject({ type: 'ack' });
    expect(await subscribe(socket, 'private:1', await subscriptionToken(target, 'private:1', { expiresIn: 120 }))).toMatchObject({ type: 'ack' });
    expect(await subscribe(socket, 'private:1', await subscriptionToken(target, 'private:1', { expiresIn: 30 }))).toMatchObject({ type: 'ack' });
    target.clock.advance(90_000);
    await socket.settle();
    expect(socket.frames.filter((frame) => frame.type === 'unsubscribed')).toEqual([]);
    expect(await target.gateway.publish('news', 'still claimed')).toBe(1);
    expect(await target.gateway.publish('private:1', 'still granted')).toBe(1);
    target.clock.advance(30_000);
    expect(await socket.next('unsubscribed')).toMatchObject({ topic: 'private:1', reason: 'expired' });
  });

  it('end with nothing once the client left the topic itself', async () => {
    const target = await closed();
    const socket = await connect(target);
    await subscribe(socket, 'private:1', await subscriptionToken(target, 'private:1'));
    expect(await request(socket, { type: 'unsubscribe', topic: 'private:1' })).toMatchObject({ type: 'ack' });
    target.clock.advance(61_000);
    await socket.settle();
    expect(socket.frames.filter((frame) => frame.type === 'unsubscribed')).toEqual([]);
  });

  it('are refused, each with its own error frame on the subscribe', async () => {
    const target = await closed();
    const socket = await connect(target);
    const other = new TextEncoder().encode('another-secret-that-is-at-least-32-bytes!');
    const cases: Array<[string, string, { code: string; message: string }]> = [
      ['another user', await subscriptionToken(target, 'private:1', { sub: 'bob' }), { code: 'forbidden', message: 'subscription token is for another user' }],
      ['another topic', await subscriptionToken(target, 'private:2'), { code: 'forbidden', message: 'subscription token is for another topic' }],
      ['expired', await subscriptionToken(target, 'private:1', { now: target.clock.now() - 120_000 }), { code: 'token_expired', message: 'subscription token expired' }],
      ['a bad signature', await subscriptionToken(target, 'private:1', { key: other }), { code: 'forbidden', message: 'invalid subscription token' }],
      ['malformed', 'not.a.jwt', { code: 'forbidden', message: 'invalid subscription token' }],
      ['naming no topic', await target.token('alice', { expiresIn: 60 }), { code: 'forbidden', message: 'invalid subscription token' }],
      ['naming a topic that is not a string', await subscriptionToken(target, ['private:1']), { code: 'forbidden', message: 'invalid subscription token' }],
    ];
    for (const [what, token, refusal] of cases) {
      expect(await subscribe(socket, 'private:1', token), what).toMatchObject({ type: 'error', ...refusal });
    }
    expect(await target.gateway.publish('private:1', 'nobody')).toBe(0);
  });

  it("outlive their exp only when the connection's own permissions cover the topic", async () => {
    const target = await start({ permissions: [{ topics: 'user:{sub}:*', allow: ['subscribe'] }] });
    const socket = await connect(target);
    await subscribe(socket, 'user:alice:inbox', await subscriptionToken(target, 'user:alice:inbox'));
    await subscribe(socket, 'private:1', await subscriptionToken(target, 'private:1'));
    target.clock.advance(60_000);
    expect(await socket.next('unsubscribed')).toMatchObject({ topic: 'private:1', reason: 'expired' });
    await socket.settle();
    expect(socket.frames.filter((frame) => frame.type === 'unsubscribed')).toHaveLength(1);
    expect(await target.gateway.publish('user:alice:inbox', 'kept')).toBe(1);
  });

  it('are refused when the gateway takes none (subscriptionTokenClaim: false)', async () => {
    const target = await start({ authorize: () => false, subscriptionTokenClaim: false });
    const socket = await connect(target);
    expect(await subscribe(socket, 'private:1', await subscriptionToken(target, 'private:1'))).toMatchObject({
      type: 'error',
      code: 'forbidden',
      message: 'subscription tokens are not accepted',
    });
  });

  it('read the topic from the configured claim', async () => {
    const target = await start({ authorize: () => false, subscriptionTokenClaim: 'channel' });
    const socket = await connect(target);
    const token = await target.token('alice', { expiresIn: 60, claims: { channel: 'private:1' } });
    expect(await subscribe(socket, 'private:1', token)).toMatchObject({ type: 'ack' });
  });
});

describe('reauth', () => {
  it("ends the topics the new claims no longer allow with `unsubscribed {reason: 'forbidden'}`, and delivers no more on them", async () => {
    const target = await start({ permissionsClaim: 'topics' });
    const socket = await connect(target, 'alice', { topics: ['room:1', 'room:2'] });
    await subscribe(socket, 'room:1');
    await subscribe(socket, 'room:2');
    socket.send({ type: 'auth', token: await target.token('alice', { expiresIn: 3_600, claims: { topics: ['room:2'] } }) });
    expect(await socket.next('unsubscribed')).toEqual({
      type: 'unsubscribed',
      topic: 'room:1',
      reason: 'forbidden',
      message: "no longer allowed to subscribe to 'room:1'",
    });
    expect(socket.frames.filter((frame) => frame.type === 'auth_ok')).toHaveLength(2);
    expect(await target.gateway.publish('room:1', 'gone')).toBe(0);
    expect(await target.gateway.publish('room:2', 'kept')).toBe(1);
    expect((await socket.next('message')).data).toBe('kept');
    expect(socket.frames.filter((frame) => frame.type === 'unsubscribed')).toHaveLength(1);
  });

  it.each([
    ['with history', {}],
    ['without history (frames carry no stream)', { history: false as const }],
  ])('after an expiry, releases none of the deliveries held for a topic the new claims no longer allow (%s)', async (_, extra) => {
    const target = await start({ permissionsClaim: 'topics', ...extra });
    const socket = await TestSocket.open(target.wsUrl);
    sockets.push(socket);
    socket.send({ type: 'auth', token: await target.token('alice', { expiresIn: 60, claims: { topics: ['room:1', 'room:2'] } }) });
    await socket.next('auth_ok');
    await subscribe(socket, 'room:1');
    await subscribe(socket, 'room:2');
    target.clock.advance(60_000);
    expect(await socket.next('reauth_required')).toMatchObject({ reason: 'expiring' });
    await socket.next('reauth_required', socket.frames.findIndex((frame) => frame.type === 'reauth_required') + 1);
    expect(await target.gateway.publish('room:1', 'held for room 1')).toBe(1);
    expect(await target.gateway.publish('room:2', 'held for room 2')).toBe(1);
    socket.send({ type: 'auth', token: await target.token('alice', { expiresIn: 3_600, claims: { topics: ['room:2'] } }) });
    expect((await socket.next('message')).data).toBe('held for room 2');
    await socket.settle();
    expect(socket.frames.filter((frame) => frame.type === 'message').map((frame) => (frame as { data: unknown }).data)).toEqual(['held for room 2']);
    expect(socket.frames.find((frame) => frame.type === 'unsubscribed')).toMatchObject({ topic: 'room:1', reason: 'forbidden' });
  });

  it('leaves alone the topics a subscription token or the authorize callback granted', async () => {
    const target = await start({
      permissions: [{ topics: 'user:{sub}:*', allow: ['subscribe'] }],
      subscriptionTokenClaim: 'topic',
    });
    const socket = await connect(target);
    await subscribe(socket, 'private:1', await target.token('alice', { expiresIn: 600, claims: { topic: 'private:1' } }));
    await subscribe(socket, 'user:alice:inbox');
    socket.send({ type: 'auth', token: await target.token('alice', { expiresIn: 3_600 }) });
    await socket.collect('auth_ok', 2);
    await socket.settle();
    expect(socket.frames.filter((frame) => frame.type === 'unsubscribed')).toEqual([]);
    expect(await target.gateway.publish('private:1', 'x')).toBe(1);
    expect(await target.gateway.publish('user:alice:inbox', 'x')).toBe(1);
  });
});

describe('server-side subscriptions from a claim (subscribeClaim)', () => {
  it('joins the topics the claim lists at connect, reported in auth_ok.streams', async () => {
    const target = await start({ subscribeClaim: 'channels', authorize: () => false });
    const socket = await connect(target, 'alice', { channels: ['news', 'user:alice'] });
    const authOk = socket.frames.find((frame) => frame.type === 'auth_ok');
    expect(Object.keys((authOk as { streams: object }).streams).sort()).toEqual(['topic:news', 'topic:user:alice', 'user:alice']);
    expect(await target.gateway.publish('news', 'pushed')).toBe(1);
    expect((await socket.next('message')).data).toBe('pushed');
    // A client confirming a claimed topic is answered with its position, though authorize says no.
    expect(await subscribe(socket, 'news')).toMatchObject({ type: 'ack', streams: { 'topic:news': { offset: 1 } } });
    expect(await subscribe(socket, 'elsewhere')).toMatchObject({ type: 'error', code: 'forbidden' });
  });

  it('answers a claim of the wrong type or with an invalid topic with an error frame after auth_ok naming it; the connection stays', async () => {
    const target = await start({ subscribeClaim: 'channels' });
    for (const channels of ['news', ['news', 7], ['news*']]) {
      const socket = await connect(target, 'alice', { channels: channels as never });
      const error = await socket.next('error');
      expect(error).toMatchObject({ code: 'forbidden' });
      expect(error.message).toMatch(/^claim 'channels' is malformed: expected an array of topics/);
      expect(socket.frames.findIndex((frame) => frame.type === 'auth_ok')).toBeLessThan(socket.frames.indexOf(error));
      expect(await request(socket, { type: 'ping' })).toMatchObject({ type: 'pong' });
    }
    expect(await target.gateway.publish('news', 'x')).toBe(0);
  });

  it('ends a claimed topic on a reauth whose claim no longer lists it (unless the permissions allow it)', async () => {
    const target = await start({ subscribeClaim: 'channels', permissions: [{ topics: 'public:*', allow: ['subscribe'] }] });
    const socket = await connect(target, 'alice', { channels: ['team:1', 'team:2', 'public:x'] });
    socket.send({ type: 'auth', token: await target.token('alice', { expiresIn: 3_600, claims: { channels: ['team:2'] } }) });
    expect(await socket.next('unsubscribed')).toMatchObject({ topic: 'team:1', reason: 'forbidden' });
    await socket.settle();
    expect(socket.frames.filter((frame) => frame.type === 'unsubscribed')).toHaveLength(1);
    expect(await target.gateway.publish('team:2', 'x')).toBe(1);
    expect(await target.gateway.publish('public:x', 'x')).toBe(1);
  });
});
