import type { PresenceMember, ServerMessage } from '@authsocket/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/errors.js';
import type { GatewayOptions, PresenceOptions } from '../src/options.js';
import { MemoryPresenceStore } from '../src/presence-store.js';
import { resolveOptions } from '../src/options.js';
import { SECRET, startServer, type TestServer, TestSocket } from './helpers.js';

/** Presence over real sockets against a real gateway, with the in-memory presence store. */

let server: TestServer | undefined;
const sockets: TestSocket[] = [];

/** The in-memory store, counting its writes: "nothing is written" is then something a test can check. */
class CountingPresenceStore extends MemoryPresenceStore {
  joins = 0;
  override join(topic: string, member: PresenceMember, maxMembers?: number): Promise<boolean> {
    this.joins++;
    return super.join(topic, member, maxMembers);
  }
}

async function start(presence: PresenceOptions | false | undefined, options: Partial<GatewayOptions> = {}): Promise<TestServer> {
  server = await startServer({ ...(presence === undefined ? {} : { presence }), ...options });
  return server;
}

async function connect(target: TestServer, user = 'alice', claims: Record<string, unknown> = {}): Promise<TestSocket> {
  const socket = await TestSocket.open(target.wsUrl);
  sockets.push(socket);
  socket.send({ type: 'auth', token: await target.token(user, { claims }) });
  await socket.next('auth_ok');
  return socket;
}

let ids = 0;
/** Sends a frame with a fresh `id` and waits for the frame answering it (ack, presence or error). */
async function request(socket: TestSocket, frame: Record<string, unknown>): Promise<ServerMessage> {
  const id = `r${++ids}`;
  const from = socket.frames.length;
  socket.send({ ...frame, id });
  for (;;) {
    await socket.settle();
    const answer = socket.frames.slice(from).find((candidate) => 'id' in candidate && candidate.id === id);
    if (answer) return answer;
  }
}

const subscribe = (socket: TestSocket, topic: string) => request(socket, { type: 'subscribe', topic });
const presence = (socket: TestSocket, topic: string, countOnly?: boolean) =>
  request(socket, { type: 'presence', topic, ...(countOnly === undefined ? {} : { countOnly }) });

/** Who `topic` lists, as sorted `user/connection` pairs. */
async function listed(socket: TestSocket, topic: string): Promise<string[]> {
  const answer = await presence(socket, topic);
  if (answer.type !== 'presence') throw new Error(`expected a presence answer, got ${JSON.stringify(answer)}`);
  expect(answer.count).toBe(answer.members?.length);
  return (answer.members ?? []).map((member) => `${member.user}`).sort();
}

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await server?.close();
  server = undefined;
});

describe('presence members and count', () => {
  it('lists every connection of every user on a topic, with info from the configured claim', async () => {
    const target = await start({ infoClaim: 'name' });
    const alice1 = await connect(target, 'alice', { name: 'Alice' });
    const alice2 = await connect(target, 'alice', { name: 'Alice' });
    const bob = await connect(target, 'bob', { name: 'Bob' });
    const carol = await connect(target, 'carol');
    for (const socket of [alice1, alice2, bob, carol]) expect((await subscribe(socket, 'room')).type).toBe('ack');
    const answer = await presence(bob, 'room');
    expect(answer).toMatchObject({ type: 'presence', topic: 'room', count: 4 });
    const members = (answer as unknown as { members: PresenceMember[] }).members;
    expect(members.map((member) => [member.user, member.info]).sort()).toEqual([
      ['alice', 'Alice'],
      ['alice', 'Alice'],
      ['bob', 'Bob'],
      // No such claim in carol's token: no `info` at all.
      ['carol', undefined],
    ]);
    expect('info' in (members.find((member) => member.user === 'carol') as PresenceMember)).toBe(false);
    // Two connections of one user are two members, each with its own connection id.
    expect(new Set(members.map((member) => member.connection)).size).toBe(4);
    expect(await target.gateway.presenceCount('room')).toBe(4);
    expect((await target.gateway.presence('room')).length).toBe(4);
  });

  it('answers countOnly with the count and no members', async () => {
    const target = await start({}, { authorize: () => true });
    const alice = await connect(target, 'alice');
    const bob = await connect(target, 'bob');
    await subscribe(alice, 'room');
    await subscribe(bob, 'room');
    const answer = await presence(alice, 'room', true);
    expect(answer).toEqual({ type: 'presence', id: expect.any(String), topic: 'room', count: 2 });
    // A topic nobody is on: zero, not an error (for a reader the operator's authorize lets in).
    expect(await presence(alice, 'empty', true)).toMatchObject({ type: 'presence', count: 0 });
  });

  it('lists members a server-side topic (onConnect) joined, and their join is past the cap', async () => {
    const target = await start({ maxMembers: 1 }, { handler: { onConnect: () => ({ topics: ['news'] }) } });
    const alice = await connect(target, 'alice');
    const bob = await connect(target, 'bob');
    expect(await listed(alice, 'news')).toEqual(['alice', 'bob']);
    // A client subscribe is held to the cap.
    const carol = await connect(target, 'carol');
    await request(carol, { type: 'unsubscribe', topic: 'news' });
    expect(await subscribe(carol, 'news')).toMatchObject({ type: 'error', code: 'limit_exceeded' });
    expect(await listed(bob, 'news')).toEqual(['alice', 'bob']);
  });
});

describe('leaving presence', () => {
  it('removes the member on unsubscribe, on close and on logout (whose connection id is replaced)', async () => {
    const target = await start({});
    const observer = await connect(target, 'observer');
    await subscribe(observer, 'room');
    const alice = await connect(target, 'alice');
    const bob = await connect(target, 'bob');
    const carol = await connect(target, 'carol');
    for (const socket of [alice, bob, carol]) await subscribe(socket, 'room');
    expect(await listed(observer, 'room')).toEqual(['alice', 'bob', 'carol', 'observer']);

    await request(alice, { type: 'unsubscribe', topic: 'room' });
    expect(await listed(observer, 'room')).toEqual(['bob', 'carol', 'observer']);

    bob.close();
    await bob.closed;
    await expect.poll(() => listed(observer, 'room'), { timeout: 2_000 }).toEqual(['carol', 'observer']);

    const before = (await target.gateway.presence('room')).find((member) => member.user === 'carol')?.connection;
    carol.send({ type: 'logout' });
    await carol.next('logged_out');
    expect(await listed(observer, 'room')).toEqual(['observer']);
    // Back in as another user: listed under the new connection id, the old one gone for good.
    carol.send({ type: 'auth', token: await target.token('dave') });
    await carol.next('auth_ok', carol.frames.findIndex((frame) => frame.type === 'logged_out'));
    await subscribe(carol, 'room');
    const after = await target.gateway.presence('room');
    expect(after.map((member) => member.user).sort()).toEqual(['dave', 'observer']);
    expect(after.some((member) => member.connection === before)).toBe(false);
  });
});

describe('the cap per topic', () => {
  it('refuses a subscribe to a full topic with limit_exceeded, and the connection does not join it', async () => {
    const target = await start({ maxMembers: 2 });
    const alice = await connect(target, 'alice');
    const bob = await connect(target, 'bob');
    const carol = await connect(target, 'carol');
    await subscribe(alice, 'room');
    await subscribe(bob, 'room');
    const refused = await subscribe(carol, 'room');
    expect(refused).toMatchObject({ type: 'error', code: 'limit_exceeded', message: "topic 'room' has the most members allowed" });
    expect(await target.gateway.presenceCount('room')).toBe(2);
    // Not subscribed: a publication reaches the two members only.
    expect(await target.gateway.publish('room', 'hi')).toBe(2);
    await carol.settle();
    expect(carol.frames.some((frame) => frame.type === 'message')).toBe(false);
    // A re-subscribe of a member does not count twice; once one leaves, there is room again.
    expect((await subscribe(alice, 'room')).type).toBe('ack');
    await request(bob, { type: 'unsubscribe', topic: 'room' });
    expect((await subscribe(carol, 'room')).type).toBe('ack');
    expect(await listed(alice, 'room')).toEqual(['alice', 'carol']);
  });
});

describe('presence requests that are refused', () => {
  it('with neither permissions nor an authorize of the operator: lets only subscribers read', async () => {
    const target = await start({});
    const alice = await connect(target, 'alice');
    await subscribe(alice, 'room');
    const bob = await connect(target, 'bob');
    expect(await presence(bob, 'room')).toMatchObject({ type: 'error', code: 'forbidden' });
    await subscribe(bob, 'room');
    expect(await presence(bob, 'room')).toMatchObject({ type: 'presence', count: 2 });
  });

  it('with a handler deciding subscribes (no permissions): lets only subscribers read, so its refusal also hides the members', async () => {
    // An authorize that allows presence everywhere does not open it past the handler's refusal either.
    const target = await start({}, { handler: { onSubscribe: (context) => context.user !== 'mallory' }, authorize: () => true });
    const alice = await connect(target, 'alice');
    await subscribe(alice, 'room');
    const mallory = await connect(target, 'mallory');
    expect(await subscribe(mallory, 'room')).toMatchObject({ type: 'error', code: 'forbidden' });
    expect(await presence(mallory, 'room')).toMatchObject({ type: 'error', code: 'forbidden' });
    expect(await presence(alice, 'room')).toMatchObject({ type: 'presence', count: 1 });
  });

  it('refuses a topic the user may not see with forbidden, naming the topic', async () => {
    const target = await start({}, { authorize: (user, action) => action !== 'presence' || user === 'admin' });
    const alice = await connect(target, 'alice');
    await subscribe(alice, 'secret');
    expect(await presence(alice, 'secret')).toMatchObject({
      type: 'error',
      code: 'forbidden',
      message: "not allowed to read the presence of 'secret'",
    });
    const admin = await connect(target, 'admin');
    expect(await presence(admin, 'secret', true)).toMatchObject({ type: 'presence', count: 1 });
  });

  it('refuses a topic without presence with bad_request, and writes nothing for its subscribers', async () => {
    const store = new CountingPresenceStore();
    const target = await start({ topics: ['chat:*', 'lobby'] }, { presenceStore: store });
    const alice = await connect(target, 'alice');
    expect((await subscribe(alice, 'news')).type).toBe('ack');
    expect(store.joins).toBe(0);
    expect(await presence(alice, 'news')).toMatchObject({ type: 'error', code: 'bad_request', message: "topic 'news' has no presence" });
    // Exact names and prefixes both have it.
    await subscribe(alice, 'lobby');
    await subscribe(alice, 'chat:1');
    expect(store.joins).toBe(2);
    expect(await presence(alice, 'chat:1', true)).toMatchObject({ type: 'presence', count: 1 });
    expect(await presence(alice, 'lobbyist')).toMatchObject({ type: 'error', code: 'bad_request' });
  });

  it('is off by default: a presence request answers bad_request and no subscribe writes to the store', async () => {
    const store = new CountingPresenceStore();
    const target = await start(undefined, { presenceStore: store });
    const alice = await connect(target, 'alice');
    await subscribe(alice, 'room');
    expect(await presence(alice, 'room')).toMatchObject({ type: 'error', code: 'bad_request' });
    expect(store.joins).toBe(0);
    expect(target.gateway.hasPresence('room')).toBe(false);
    await expect(target.gateway.presence('room')).rejects.toThrow(ConfigError);
  });

  it('needs no token in per-message mode, like subscribe', async () => {
    const target = await start({}, { perMessageAuth: true });
    const alice = await connect(target, 'alice');
    await subscribe(alice, 'room');
    expect(await presence(alice, 'room', true)).toMatchObject({ type: 'presence', count: 1 });
  });
});

describe('join and leave frames', () => {
  it('tells every subscriber (the joining one too) who joined and left, outside history', async () => {
    const target = await start({ joinLeave: true, infoClaim: 'name' });
    const alice = await connect(target, 'alice', { name: 'Alice' });
    await subscribe(alice, 'room');
    const aliceId = (await target.gateway.presence('room'))[0]?.connection;
    const [ownJoin] = await alice.collect('join', 1);
    expect(ownJoin).toEqual({ type: 'join', topic: 'room', member: { user: 'alice', connection: aliceId, info: 'Alice' } });

    const bob = await connect(target, 'bob', { name: 'Bob' });
    const outsider = await connect(target, 'outsider');
    await subscribe(bob, 'room');
    const joins = await alice.collect('join', 2);
    expect(joins[1]).toMatchObject({ type: 'join', topic: 'room', member: { user: 'bob', info: 'Bob' } });
    const bobId = (joins[1] as { member: PresenceMember }).member.connection;

    bob.close();
    const [leave] = await alice.collect('leave', 1);
    expect(leave).toEqual({ type: 'leave', topic: 'room', member: { user: 'bob', connection: bobId, info: 'Bob' } });
    // Not a message of the topic's stream: no offset, and nothing to replay from history.
    expect(JSON.stringify([...joins, leave])).not.toContain('offset');
    const late = await connect(target, 'late');
    const since = (await subscribe(late, 'room')) as { streams?: Record<string, { epoch: string; offset: number }> };
    expect(since.streams?.['topic:room']?.offset).toBe(0);
    await outsider.settle();
    expect(outsider.frames.some((frame) => frame.type === 'join' || frame.type === 'leave')).toBe(false);
  });

  it('sends no join or leave frames unless joinLeave is on', async () => {
    const target = await start({});
    const alice = await connect(target, 'alice');
    await subscribe(alice, 'room');
    const bob = await connect(target, 'bob');
    await subscribe(bob, 'room');
    await request(bob, { type: 'unsubscribe', topic: 'room' });
    await alice.settle();
    expect(alice.frames.some((frame) => frame.type === 'join' || frame.type === 'leave')).toBe(false);
  });

  it('lists a resumed topic past the cap, announcing it after auth_ok', async () => {
    const target = await start({ joinLeave: true, maxMembers: 1 });
    const alice = await connect(target, 'alice');
    const ack = (await subscribe(alice, 'room')) as { streams?: Record<string, { epoch: string; offset: number }> };
    const position = ack.streams?.['topic:room'];
    expect(position).toBeDefined();
    const bob = await TestSocket.open(target.wsUrl);
    sockets.push(bob);
    bob.send({ type: 'auth', token: await target.token('bob'), resume: { 'topic:room': position } });
    const authOk = await bob.next('auth_ok');
    expect(authOk.streams?.['topic:room']).toMatchObject({ recovered: true });
    const joins = await alice.collect('join', 2);
    expect((joins[1] as { member: PresenceMember }).member.user).toBe('bob');
    await bob.next('join');
    expect(bob.frames.findIndex((frame) => frame.type === 'join')).toBeGreaterThan(bob.frames.indexOf(authOk));
    expect(await listed(alice, 'room')).toEqual(['alice', 'bob']);
  });
});

describe('the presence option', () => {
  const base = { jwt: { secret: SECRET } };
  it.each([
    [{ presence: 'on' }, 'presence'],
    [{ presence: { topics: 'chat:*' } }, 'presence.topics'],
    [{ presence: { topics: ['ok', ''] } }, 'presence.topics'],
    [{ presence: { infoClaim: '' } }, 'presence.infoClaim'],
    [{ presence: { maxMembers: 0 } }, 'presence.maxMembers'],
    [{ presence: { maxMembers: 1.5 } }, 'presence.maxMembers'],
    [{ presence: { joinLeave: 'yes' } }, 'presence.joinLeave'],
  ])('refuses %j with a ConfigError naming %s', (given, field) => {
    let thrown: unknown;
    try {
      resolveOptions({ ...base, ...(given as object) } as GatewayOptions);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as ConfigError).option).toBe(field);
  });

  it('defaults to false and takes an empty object as every topic', () => {
    expect(resolveOptions(base).presence).toBe(false);
    expect(resolveOptions({ ...base, presence: {} }).presence).toEqual({});
  });
});
