import { RESUME_PROTOCOL_PREFIX, SUBPROTOCOL, type StreamPosition, TICKET_PROTOCOL_PREFIX } from '@authsocket/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { refusal, startServer, TestSocket, type TestServer } from './helpers.js';

let server: TestServer;
afterEach(async () => {
  await server?.close();
});

/** Where a socket has read up to, per stream: its auth_ok/ack positions advanced by each message. */
function positions(sockets: TestSocket[]): Record<string, StreamPosition> {
  const result: Record<string, StreamPosition> = {};
  for (const socket of sockets) {
    for (const frame of socket.frames) {
      if ((frame.type === 'auth_ok' || frame.type === 'ack') && frame.streams) {
        for (const [stream, state] of Object.entries(frame.streams)) {
          if (state.epoch !== undefined && state.offset !== undefined) result[stream] = { epoch: state.epoch, offset: state.offset };
        }
      }
      if (frame.type === 'message' && frame.stream && frame.epoch && frame.offset !== undefined) {
        result[frame.stream] = { epoch: frame.epoch, offset: frame.offset };
      }
    }
  }
  return result;
}

const messageData = (sockets: TestSocket[]) =>
  sockets.flatMap((socket) => socket.frames.flatMap((frame) => (frame.type === 'message' ? [frame.data] : [])));

async function resumed(target: TestServer, sub: string, resume: Record<string, StreamPosition>, expiresIn = 300) {
  const socket = await TestSocket.open(target.wsUrl);
  socket.send({ type: 'auth', token: await target.token(sub, { expiresIn }), resume });
  return { socket, ok: await socket.next('auth_ok') };
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe('resume after a dropped connection', () => {
  it('(a) delivers a 1,000-message burst exactly once, in order, across a TCP drop', async () => {
    server = await startServer();
    const first = await TestSocket.authenticated(server, 'alice');
    for (let i = 0; i < 1_000; i++) {
      await server.gateway.sendToUser('alice', i);
      // Cut the TCP connection mid-burst, without a close handshake.
      if (i === 499) first.ws.terminate();
    }
    await first.closed;
    const { socket: second, ok } = await resumed(server, 'alice', positions([first]));
    expect(ok.streams?.['user:alice']).toMatchObject({ recovered: true });
    for (let i = 1_000; i < 1_010; i++) await server.gateway.sendToUser('alice', i);
    await second.collect('message', 1_010 - messageData([first]).length);
    await second.settle();
    expect(messageData([first, second])).toEqual(range(0, 1_010));
    second.close();
  });

  it('resumes with the position given in auth_ok even before any message arrived', async () => {
    server = await startServer();
    const first = await TestSocket.authenticated(server, 'alice');
    const start = positions([first]);
    expect(start['user:alice']?.offset).toBe(0);
    first.ws.terminate();
    await first.closed;
    await server.gateway.sendToUser('alice', 'while away');
    const { socket } = await resumed(server, 'alice', start);
    expect(await socket.next('message')).toMatchObject({ data: 'while away', stream: 'user:alice', offset: 1 });
    socket.close();
  });

  it('starts a fresh connection at the current position: no replay of earlier history, nothing new missed', async () => {
    server = await startServer();
    for (let i = 0; i < 3; i++) await server.gateway.sendToUser('alice', `old ${i}`);
    await server.gateway.publish('news', 'old news');
    const socket = await TestSocket.authenticated(server, 'alice');
    const ok = socket.frames.find((frame) => frame.type === 'auth_ok');
    expect(ok).toMatchObject({ streams: { 'user:alice': { offset: 3 } } });
    expect(ok?.type === 'auth_ok' && ok.streams?.['user:alice']).not.toHaveProperty('recovered');
    socket.send({ type: 'subscribe', topic: 'news', id: 's1' });
    expect(await socket.next('ack')).toMatchObject({ id: 's1', streams: { 'topic:news': { offset: 1 } } });
    await server.gateway.sendToUser('alice', 'new');
    await server.gateway.publish('news', 'new news');
    await socket.collect('message', 2);
    await socket.settle();
    expect(socket.frames.filter((frame) => frame.type === 'message')).toMatchObject([
      { data: 'new', stream: 'user:alice', offset: 4 },
      { data: 'new news', stream: 'topic:news', offset: 2 },
    ]);
    socket.close();
  });

  it('acks a subscribe before a message published in the same tick, so the reported position holds', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let gated = false;
    let pending = 0;
    // Holds the subscribe and the publish until both wait, then lets both go in the same tick.
    const authorize = async () => {
      if (!gated) return true;
      if (++pending === 2) release();
      await gate;
      return true;
    };
    server = await startServer({ authorize });
    const alice = await TestSocket.authenticated(server, 'alice');
    const bob = await TestSocket.authenticated(server, 'bob');
    gated = true;
    alice.send({ type: 'subscribe', topic: 't', id: 's' });
    bob.send({ type: 'publish', topic: 't', data: 'live', id: 'p' });
    await alice.next('message');
    const frames = alice.frames.filter((frame) => frame.type === 'ack' || frame.type === 'message');
    expect(frames).toMatchObject([
      { type: 'ack', id: 's', streams: { 'topic:t': { offset: 0 } } },
      { type: 'message', data: 'live', offset: 1 },
    ]);
    alice.close();
    bob.close();
  });

  it('resumes a ticket-authenticated socket from the resume. subprotocol entry', async () => {
    server = await startServer();
    const first = await TestSocket.withTicket(server.wsUrl, await server.ticket('alice'));
    await first.next('auth_ok');
    await server.gateway.sendToUser('alice', 'one');
    await first.next('message');
    first.ws.terminate();
    await first.closed;
    await server.gateway.sendToUser('alice', 'two');
    const resume = Buffer.from(JSON.stringify(positions([first]))).toString('base64url');
    const second = await TestSocket.open(server.wsUrl, {
      protocols: [SUBPROTOCOL, `${TICKET_PROTOCOL_PREFIX}${await server.ticket('alice')}`, `${RESUME_PROTOCOL_PREFIX}${resume}`],
    });
    expect((await second.next('auth_ok')).streams?.['user:alice']).toMatchObject({ recovered: true, offset: 1 });
    expect(await second.next('message')).toMatchObject({ data: 'two', offset: 2 });
    second.close();
  });

  it('refuses a malformed resume entry with 400', async () => {
    server = await startServer();
    const bad = Buffer.from('{"user:alice":{"epoch":1}}').toString('base64url');
    const refused = await refusal(TestSocket.open(server.wsUrl, { protocols: [SUBPROTOCOL, `${RESUME_PROTOCOL_PREFIX}${bad}`] }));
    expect(refused.status).toBe(400);
  });
});

describe('resume across expiry', () => {
  it('(b) holds a burst through a late in-band reauth: every message once, in order', async () => {
    server = await startServer({ reauthGraceMs: 60_000, maxHeldMessages: 2_000 });
    const socket = await TestSocket.open(server.wsUrl);
    socket.send({ type: 'auth', token: await server.token('alice', { expiresIn: 60 }) });
    const { expiresAt } = await socket.next('auth_ok');
    for (let i = 0; i < 1_000; i++) {
      await server.gateway.sendToUser('alice', i);
      if (i === 399) server.clock.advance(expiresAt - server.clock.now());
    }
    await socket.collect('reauth_required', 2);
    socket.send({ type: 'auth', token: await server.token('alice', { expiresIn: 300 }) });
    await socket.collect('message', 1_000);
    await socket.settle();
    expect(messageData([socket])).toEqual(range(0, 1_000));
    socket.close();
  });

  it('(c) brings back what was held when the deadline is missed, on reconnect with resume', async () => {
    server = await startServer({ reauthGraceMs: 10_000, maxHeldMessages: 2_000 });
    const first = await TestSocket.open(server.wsUrl);
    first.send({ type: 'auth', token: await server.token('alice', { expiresIn: 60 }) });
    const { expiresAt } = await first.next('auth_ok');
    for (let i = 0; i < 1_000; i++) {
      await server.gateway.sendToUser('alice', i);
      if (i === 599) server.clock.advance(expiresAt - server.clock.now());
    }
    server.clock.advance(10_000);
    expect((await first.closed).code).toBe(4419);
    const { socket: second, ok } = await resumed(server, 'alice', positions([first]));
    expect(ok.streams?.['user:alice']).toMatchObject({ recovered: true, offset: 600 });
    await second.collect('message', 400);
    expect(messageData([first, second])).toEqual(range(0, 1_000));
    second.close();
  });

  it('(e) replays nothing to a user revoked during the hold', async () => {
    server = await startServer({ reauthGraceMs: 60_000 });
    const first = await TestSocket.open(server.wsUrl);
    const oldToken = await server.token('alice', { expiresIn: 60 });
    first.send({ type: 'auth', token: oldToken });
    const { expiresAt } = await first.next('auth_ok');
    server.clock.advance(expiresAt - server.clock.now());
    await server.gateway.sendToUser('alice', 'secret');
    await server.gateway.revokeUser('alice');
    expect((await first.closed).code).toBe(4403);
    const second = await TestSocket.open(server.wsUrl);
    second.send({ type: 'auth', token: await server.token('alice', { expiresIn: 60, now: expiresAt - 30_000 }), resume: positions([first]) });
    expect((await second.closed).code).toBe(4403);
    expect(messageData([first, second])).toEqual([]);
  });
});

describe('explicit loss', () => {
  it('(d) reports recovered: false and replays nothing when history no longer reaches back', async () => {
    server = await startServer({ history: { maxEntries: 10 } });
    const first = await TestSocket.authenticated(server, 'alice');
    await server.gateway.sendToUser('alice', 0);
    await first.next('message');
    first.ws.terminate();
    await first.closed;
    for (let i = 1; i <= 20; i++) await server.gateway.sendToUser('alice', i);
    const { socket, ok } = await resumed(server, 'alice', positions([first]));
    expect(ok.streams?.['user:alice']).toEqual({ epoch: positions([first])['user:alice']?.epoch, offset: 21, recovered: false });
    await server.gateway.sendToUser('alice', 'live');
    expect(await socket.next('message')).toMatchObject({ data: 'live', offset: 22 });
    expect(messageData([socket])).toEqual(['live']);
    socket.close();
  });

  it('reports recovered: false for another epoch (history lost, e.g. a restart)', async () => {
    server = await startServer();
    const { socket, ok } = await resumed(server, 'alice', { 'user:alice': { epoch: 'gone', offset: 5 } });
    expect(ok.streams?.['user:alice']).toMatchObject({ offset: 0, recovered: false });
    expect(ok.streams?.['user:alice']?.epoch).not.toBe('gone');
    socket.close();
  });

  it('ages history out after maxAgeMs', async () => {
    server = await startServer({ history: { maxAgeMs: 60_000 } });
    const first = await TestSocket.authenticated(server, 'alice');
    const start = positions([first]);
    first.close();
    await server.gateway.sendToUser('alice', 'old');
    server.clock.advance(61_000);
    const { ok } = await resumed(server, 'alice', start);
    expect(ok.streams?.['user:alice']).toMatchObject({ recovered: false, offset: 1 });
  });
});

describe('isolation and authorization', () => {
  it('(f) never delivers a message to the wrong user, interleaved across drops', async () => {
    server = await startServer();
    const alice1 = await TestSocket.authenticated(server, 'alice');
    const bob1 = await TestSocket.authenticated(server, 'bob');
    for (let i = 0; i < 300; i++) {
      await server.gateway.sendToUser(i % 2 ? 'alice' : 'bob', { to: i % 2 ? 'alice' : 'bob', i });
      if (i === 150) {
        alice1.ws.terminate();
        bob1.ws.terminate();
      }
    }
    await alice1.closed;
    await bob1.closed;
    const { socket: alice2 } = await resumed(server, 'alice', positions([alice1]));
    const { socket: bob2 } = await resumed(server, 'bob', positions([bob1]));
    // Bob must not be able to resume Alice's stream by naming it.
    const { socket: mallory, ok } = await resumed(server, 'mallory', positions([alice1]));
    expect(ok.streams?.['user:alice']).toEqual({ recovered: false });
    await alice2.settle();
    await bob2.settle();
    await mallory.settle();
    const to = (sockets: TestSocket[]) => messageData(sockets).map((data) => (data as { to: string }).to);
    expect(to([alice1, alice2])).toEqual(Array(150).fill('alice'));
    expect(to([bob1, bob2])).toEqual(Array(150).fill('bob'));
    expect(messageData([mallory])).toEqual([]);
    for (const socket of [alice2, bob2, mallory]) socket.close();
  });

  it('recovers a topic with subscribe {since}, and replays nothing once the user may no longer read it', async () => {
    let allowed = true;
    server = await startServer({ authorize: (_user, action, topic) => action === 'publish' || (topic === 'room' && allowed) });
    const first = await TestSocket.authenticated(server, 'alice');
    first.send({ type: 'subscribe', topic: 'room', id: 's' });
    await first.next('ack');
    await server.gateway.publish('room', 'a');
    await first.next('message');
    first.ws.terminate();
    await first.closed;
    await server.gateway.publish('room', 'b');
    await server.gateway.publish('room', 'c');

    const since = positions([first])['topic:room'];
    const second = await TestSocket.authenticated(server, 'alice');
    second.send({ type: 'subscribe', topic: 'room', id: 's2', since });
    expect((await second.next('ack')).streams?.['topic:room']).toMatchObject({ recovered: true, offset: 1 });
    await second.collect('message', 2);
    expect(messageData([second])).toEqual(['b', 'c']);

    allowed = false;
    const third = await TestSocket.open(server.wsUrl);
    third.send({ type: 'auth', token: await server.token('alice'), resume: { 'topic:room': since as StreamPosition } });
    expect((await third.next('auth_ok')).streams?.['topic:room']).toEqual({ recovered: false });
    await server.gateway.publish('room', 'd');
    await third.settle();
    expect(messageData([third])).toEqual([]);
    second.close();
    third.close();
  });

  it('resumes topic streams named in auth.resume by subscribing to them', async () => {
    server = await startServer();
    const first = await TestSocket.authenticated(server, 'alice');
    first.send({ type: 'subscribe', topic: 'room', id: 's' });
    await first.next('ack');
    first.ws.terminate();
    await first.closed;
    await server.gateway.publish('room', 'missed');
    const { socket } = await resumed(server, 'alice', positions([first]));
    expect(await socket.next('message')).toMatchObject({ topic: 'room', data: 'missed' });
    await server.gateway.publish('room', 'live');
    await socket.collect('message', 2);
    socket.close();
  });
});

describe('without history', () => {
  it('sends frames without offsets and auth_ok without streams', async () => {
    server = await startServer({ history: false });
    const socket = await TestSocket.authenticated(server, 'alice');
    expect(socket.frames[0]).toEqual({ type: 'auth_ok', user: 'alice', expiresAt: expect.any(Number) });
    await server.gateway.sendToUser('alice', 1);
    expect(await socket.next('message')).toEqual({ type: 'message', data: 1 });
    socket.close();
  });
});
