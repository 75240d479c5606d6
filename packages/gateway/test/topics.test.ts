import { SUBPROTOCOL } from '@authsocket/protocol';
import { type JWTPayload, SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { connectAs, SECRET, start, stopAll, TestClient, type TestGateway } from './helpers.js';

afterEach(stopAll);

async function answer(client: TestClient, frame: { type: string; topic: string; id: string; data?: unknown }) {
  client.send(frame);
  return client.next((f) => (f.type === 'ack' || f.type === 'error' || f.type === 'presence') && f.id === frame.id);
}

describe('topic access', () => {
  it('lets clients subscribe to any topic but publish on none by default', async () => {
    const gateway = await start(['--demo', '--jwt-secret', SECRET, '--subscribe-topics', '*']);
    const { client } = await connectAs(gateway, 'alice');
    expect(await answer(client, { type: 'subscribe', topic: 'anything', id: 's' })).toMatchObject({ type: 'ack' });
    expect(await answer(client, { type: 'publish', topic: 'anything', id: 'p', data: 1 })).toMatchObject({
      type: 'error',
      code: 'forbidden',
    });
  });

  it('follows --subscribe-topics and --publish-topics prefixes', async () => {
    const gateway = await start(['--demo', '--jwt-secret', SECRET, '--subscribe-topics', 'news:', '--publish-topics', 'news:']);
    const { client } = await connectAs(gateway, 'alice');
    expect(await answer(client, { type: 'subscribe', topic: 'news:today', id: 's1' })).toMatchObject({ type: 'ack' });
    expect(await answer(client, { type: 'subscribe', topic: 'chat:lobby', id: 's2' })).toMatchObject({ code: 'forbidden' });
    expect(await answer(client, { type: 'publish', topic: 'news:today', id: 'p1', data: 'hi' })).toMatchObject({ type: 'ack' });
    expect(await client.next((f) => f.type === 'message' && f.topic === 'news:today')).toMatchObject({ data: 'hi' });
    expect(await answer(client, { type: 'publish', topic: 'chat:lobby', id: 'p2', data: 'hi' })).toMatchObject({ code: 'forbidden' });
  });

  it('lets a client read the presence of the topics it may subscribe to, and refuses the others', async () => {
    const gateway = await start(['--demo', '--jwt-secret', SECRET, '--subscribe-topics', 'news:', '--publish-topics', '*', '--presence']);
    const { client } = await connectAs(gateway, 'alice');
    expect(await answer(client, { type: 'subscribe', topic: 'news:today', id: 's1' })).toMatchObject({ type: 'ack' });
    expect(await answer(client, { type: 'presence', topic: 'news:today', id: 'p1' })).toMatchObject({
      type: 'presence',
      count: 1,
      members: [{ user: 'alice' }],
    });
    // Publishing is allowed everywhere, reading presence is not: it follows --subscribe-topics.
    expect(await answer(client, { type: 'presence', topic: 'chat:lobby', id: 'p2' })).toMatchObject({
      type: 'error',
      code: 'forbidden',
      message: "not allowed to read the presence of 'chat:lobby'",
    });
  });
});

/** A socket authenticated with an HS256 token for `sub` carrying `claims` (signed with the test secret). */
async function withClaims(gateway: TestGateway, sub: string, claims: JWTPayload): Promise<TestClient> {
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt(now).setExpirationTime(now + 300).sign(new TextEncoder().encode(SECRET));
  const client = new TestClient(gateway.wsUrl, [SUBPROTOCOL]);
  await new Promise((resolve) => client.socket.once('open', resolve));
  client.send({ type: 'auth', token });
  await client.next((frame) => frame.type === 'auth_ok');
  return client;
}

describe('permissions from the token, set by flags', () => {
  it('--permission rules decide instead of the prefix lists: {sub} reaches only the own topics, `if` needs the claim', async () => {
    const gateway = await start([
      '--jwt-secret', SECRET,
      '--permission', 'user:{sub}:*=subscribe,presence',
      '--permission', 'chat:*=subscribe',
      '--permission', 'chat:*=publish if role=admin',
    ]);
    const alice = await withClaims(gateway, 'alice', { role: 'user' });
    const admin = await withClaims(gateway, 'root', { role: 'admin' });
    expect(await answer(alice, { type: 'subscribe', topic: 'user:alice:inbox', id: 's1' })).toMatchObject({ type: 'ack' });
    expect(await answer(alice, { type: 'subscribe', topic: 'user:bob:inbox', id: 's2' })).toMatchObject({ code: 'forbidden' });
    // Without the rules, --subscribe-topics' default would allow any topic.
    expect(await answer(alice, { type: 'subscribe', topic: 'news', id: 's3' })).toMatchObject({ code: 'forbidden' });
    expect(await answer(alice, { type: 'subscribe', topic: 'chat:lobby', id: 's4' })).toMatchObject({ type: 'ack' });
    expect(await answer(alice, { type: 'publish', topic: 'chat:lobby', id: 'p1', data: 'x' })).toMatchObject({ code: 'forbidden' });
    expect(await answer(admin, { type: 'publish', topic: 'chat:lobby', id: 'p2', data: 'hello' })).toMatchObject({ type: 'ack' });
    expect(await alice.next((f) => f.type === 'message' && f.topic === 'chat:lobby')).toMatchObject({ data: 'hello' });
  });

  it('keeps --subscribe-topics and --publish-topics as rules beside --permissions-claim', async () => {
    const gateway = await start(['--jwt-secret', SECRET, '--permissions-claim', 'topics', '--subscribe-topics', 'news:', '--publish-topics', 'news:']);
    const client = await withClaims(gateway, 'alice', { topics: ['team:blue'] });
    expect(await answer(client, { type: 'subscribe', topic: 'team:blue', id: 's1' })).toMatchObject({ type: 'ack' });
    expect(await answer(client, { type: 'subscribe', topic: 'news:today', id: 's2' })).toMatchObject({ type: 'ack' });
    expect(await answer(client, { type: 'subscribe', topic: 'team:red', id: 's3' })).toMatchObject({ code: 'forbidden' });
    expect(await answer(client, { type: 'publish', topic: 'news:today', id: 'p1', data: 1 })).toMatchObject({ type: 'ack' });
    expect(await answer(client, { type: 'publish', topic: 'team:blue', id: 'p2', data: 1 })).toMatchObject({ code: 'forbidden' });
  });

  it('--subscribe-claim joins the topics of the claim at connect', async () => {
    const gateway = await start(['--jwt-secret', SECRET, '--subscribe-claim', 'channels', '--subscribe-topics', '-']);
    const client = await withClaims(gateway, 'alice', { channels: ['alerts'] });
    const authOk = await client.next((frame) => frame.type === 'auth_ok');
    expect(authOk).toMatchObject({ streams: { 'topic:alerts': { offset: 0 } } });
  });
});
