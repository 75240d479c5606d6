import type { ServerMessage } from '@authsocket/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCli } from '../helpers.js';
import { Resources, until } from './harness/cleanup.js';
import { ProtocolClient } from './harness/clients.js';
import { GatewayNode } from './harness/gateway-node.js';
import { RedisServer } from './harness/redis.js';

/**
 * Presence across gateway processes on one real Redis: members in the Redis presence store (every
 * node lists every node's), join / leave frames through the Redis broker without history, and a
 * node killed -9 whose members vanish within its lease.
 */

const resources = new Resources();
let a: GatewayNode;
let b: GatewayNode;
let redisArgs: string[];
let redis: RedisServer;

const PRESENCE = ['--presence', '--presence-join-leave', '--presence-topics', 'room:*', '--presence-info-claim', 'sub', '--redis-lease', '2s', '--redis-command-timeout', '500ms'];
const isJoinOrLeave = (frame: ServerMessage) => frame.type === 'join' || frame.type === 'leave';

beforeAll(async () => {
  buildCli();
  redis = resources.add(await RedisServer.start(), (server) => server.stop());
  redisArgs = ['--redis-url', redis.url];
  [a, b] = await Promise.all(
    ['A', 'B'].map((name) => GatewayNode.start({ name, redis: redisArgs, args: PRESENCE }).then((node) => resources.add(node, (started) => started.kill()))),
  ) as [GatewayNode, GatewayNode];
  for (const node of [a, b]) await until(`node ${node.name} ready`, async () => (await node.health()).status === 200, { timeoutMs: 10_000 });
}, 60_000);

afterAll(() => resources.disposeAll());

describe('presence across two nodes on one Redis', () => {
  it('lists the members of both nodes on either, and tells a subscriber on node A who joined and left on node B', async () => {
    const alice = resources.add(await ProtocolClient.authenticated(a.wsUrl, 'alice'), (c) => c.terminate());
    await alice.subscribe('room:1');
    await alice.next((frame) => frame.type === 'join');
    const bob = resources.add(await ProtocolClient.authenticated(b.wsUrl, 'bob'), (c) => c.terminate());
    const ack = await bob.subscribe('room:1');
    expect(ack.type).toBe('ack');
    const join = await alice.next((frame) => frame.type === 'join' && 'member' in frame && frame.member.user === 'bob');
    expect(join).toMatchObject({ type: 'join', topic: 'room:1', member: { user: 'bob', connection: expect.any(String) } });
    // Either node lists both members, from the Redis presence store.
    for (const node of [a, b]) {
      const answer = await node.request('GET', '/api/topics/room%3A1/presence');
      expect(answer.status).toBe(200);
      expect(answer.body.count).toBe(2);
      const members = answer.body.members as { user: string; info?: unknown }[];
      expect(members.map((member) => `${member.user}:${String(member.info)}`).sort()).toEqual(['alice:alice', 'bob:bob']);
    }
    // A presence request over the socket, on node A, sees bob on node B too.
    alice.send({ type: 'presence', id: 'p1', topic: 'room:1', countOnly: true });
    expect(await alice.next((frame) => frame.type === 'presence')).toEqual({ type: 'presence', id: 'p1', topic: 'room:1', count: 2 });

    bob.terminate();
    const leave = await alice.next((frame) => frame.type === 'leave');
    expect(leave).toMatchObject({ type: 'leave', topic: 'room:1', member: { user: 'bob', connection: (join as { member: { connection: string } }).member.connection } });
    // Outside history: the topic's stream holds nothing, so a publication now is offset 1.
    expect((await a.publish('room:1', 'first')).status).toBe(200);
    const message = await alice.next((frame) => frame.type === 'message');
    expect(message).toMatchObject({ offset: 1 });
  });

  it('drops the members of a node killed -9 from every list within its lease', async () => {
    const c = resources.add(await GatewayNode.start({ name: 'C', redis: redisArgs, args: PRESENCE }), (started) => started.kill());
    await until('node C ready', async () => (await c.health()).status === 200, { timeoutMs: 10_000 });
    const erin = resources.add(await ProtocolClient.authenticated(a.wsUrl, 'erin'), (client) => client.terminate());
    await erin.subscribe('room:2');
    for (const user of ['frank', 'grace']) {
      const client = resources.add(await ProtocolClient.authenticated(c.wsUrl, user), (x) => x.terminate());
      await client.subscribe('room:2');
    }
    const count = async () => ((await a.request('GET', '/api/topics/room%3A2/presence?countOnly=true')).body as { count: number }).count;
    await until('all three listed', async () => (await count()) === 3, { timeoutMs: 5_000 });
    await c.kill();
    // The lease is 2 s: gone within it (plus a renewal period), with no leave from the dead node.
    await until("C's members gone", async () => (await count()) === 1, { timeoutMs: 6_000, intervalMs: 100 });
    const members = (await b.request('GET', '/api/topics/room%3A2/presence')).body.members as { user: string }[];
    expect(members.map((member) => member.user)).toEqual(['erin']);
  }, 30_000);

  it('sends nothing for a topic outside --presence-topics', async () => {
    const carol = resources.add(await ProtocolClient.authenticated(a.wsUrl, 'carol'), (c) => c.terminate());
    await carol.subscribe('lobby');
    const dave = resources.add(await ProtocolClient.authenticated(b.wsUrl, 'dave'), (c) => c.terminate());
    await dave.subscribe('lobby');
    expect((await b.publish('lobby', 'marker')).status).toBe(200);
    await carol.next((frame) => frame.type === 'message');
    expect(carol.frames.filter(isJoinOrLeave)).toEqual([]);
    expect((await a.request('GET', '/api/topics/lobby/presence')).status).toBe(404);
  });

  // Last: it freezes the Redis every node shares.
  it('answers 503 on the HTTP route, and unavailable (temporary) to a presence request and a subscribe, while Redis is frozen (SIGSTOP)', async () => {
    const henry = resources.add(await ProtocolClient.authenticated(a.wsUrl, 'henry'), (client) => client.terminate());
    await henry.subscribe('room:3');
    redis.signal('SIGSTOP');
    try {
      const answer = await a.request('GET', '/api/topics/room%3A3/presence');
      expect(answer.status).toBe(503);
      expect(answer.body).toEqual({ error: 'service unavailable', code: 'unavailable' });
      expect(answer.headers.get('retry-after')).toBe('1');
      henry.send({ type: 'presence', id: 'p-frozen', topic: 'room:3' });
      const refused = await henry.next((frame) => frame.type === 'error' && frame.id === 'p-frozen');
      expect(refused).toMatchObject({ code: 'unavailable', temporary: true });
      // A subscribe the store cannot record is refused too, and does not join the topic.
      henry.send({ type: 'subscribe', id: 's-frozen', topic: 'room:4' });
      expect(await henry.next((frame) => frame.type === 'error' && frame.id === 's-frozen')).toMatchObject({ code: 'unavailable', temporary: true });
    } finally {
      redis.signal('SIGCONT');
    }
    await until('presence answers again', async () => (await a.request('GET', '/api/topics/room%3A3/presence')).status === 200, { timeoutMs: 10_000 });
    // room:4 was never joined: a publication there reaches no one on A.
    expect((await a.publish('room:4', 'nobody')).body).toMatchObject({ deliveredLocally: 0 });
  }, 30_000);
});
