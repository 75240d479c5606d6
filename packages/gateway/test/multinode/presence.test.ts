import type { ServerMessage } from '@authsocket/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCli } from '../helpers.js';
import { Resources, until } from './harness/cleanup.js';
import { ProtocolClient } from './harness/clients.js';
import { GatewayNode } from './harness/gateway-node.js';
import { RedisServer } from './harness/redis.js';

/**
 * Presence's join / leave frames across two gateway processes on one real Redis: they travel
 * through the Redis broker like topic publications, without history. (Each node's presence store
 * is its own memory here; listing members across nodes needs the Redis presence store.)
 */

const resources = new Resources();
let a: GatewayNode;
let b: GatewayNode;

const PRESENCE = ['--presence', '--presence-join-leave', '--presence-topics', 'room:*'];
const isJoinOrLeave = (frame: ServerMessage) => frame.type === 'join' || frame.type === 'leave';

beforeAll(async () => {
  buildCli();
  const redis = resources.add(await RedisServer.start(), (server) => server.stop());
  [a, b] = await Promise.all(
    ['A', 'B'].map((name) => GatewayNode.start({ name, redis: ['--redis-url', redis.url], args: PRESENCE }).then((node) => resources.add(node, (started) => started.kill()))),
  ) as [GatewayNode, GatewayNode];
  for (const node of [a, b]) await until(`node ${node.name} ready`, async () => (await node.health()).status === 200, { timeoutMs: 10_000 });
}, 60_000);

afterAll(() => resources.disposeAll());

describe('presence across two nodes on one Redis', () => {
  it('tells a subscriber on node A who joined and left the topic on node B', async () => {
    const alice = resources.add(await ProtocolClient.authenticated(a.wsUrl, 'alice'), (c) => c.terminate());
    await alice.subscribe('room:1');
    await alice.next((frame) => frame.type === 'join');
    const bob = resources.add(await ProtocolClient.authenticated(b.wsUrl, 'bob'), (c) => c.terminate());
    const ack = await bob.subscribe('room:1');
    expect(ack.type).toBe('ack');
    const join = await alice.next((frame) => frame.type === 'join' && 'member' in frame && frame.member.user === 'bob');
    expect(join).toMatchObject({ type: 'join', topic: 'room:1', member: { user: 'bob', connection: expect.any(String) } });
    // B's own count holds bob; the HTTP route answers on either node.
    const answer = await b.request('GET', '/api/topics/room%3A1/presence');
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ topic: 'room:1', count: 1, members: [{ user: 'bob' }] });

    bob.terminate();
    const leave = await alice.next((frame) => frame.type === 'leave');
    expect(leave).toMatchObject({ type: 'leave', topic: 'room:1', member: { user: 'bob', connection: (join as { member: { connection: string } }).member.connection } });
    // Outside history: the topic's stream holds nothing, so a publication now is offset 1.
    expect((await a.publish('room:1', 'first')).status).toBe(200);
    const message = await alice.next((frame) => frame.type === 'message');
    expect(message).toMatchObject({ offset: 1 });
  });

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
});
