import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY, buildCli } from '../helpers.js';
import { Resources, until } from './harness/cleanup.js';
import { Nginx } from './harness/balancers.js';
import { ProtocolClient, signToken } from './harness/clients.js';
import { GatewayNode } from './harness/gateway-node.js';
import { RedisServer } from './harness/redis.js';

/**
 * deploy/nginx.conf, run by a real nginx in front of two CLI nodes on one real Redis: upgrades pass
 * through, connections spread over both nodes, a ticket or push through nginx works whichever node
 * answers, and a node killed -9 is skipped at connect (open source nginx has no active health check).
 */

const USERS = 12;
const resources = new Resources();
let nodes: GatewayNode[];
let proxy: Nginx;

async function viaProxy(path: string, bearer: string, body?: unknown) {
  const response = await fetch(`${proxy.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bearer}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    signal: AbortSignal.timeout(5_000),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json().catch(() => ({}))) as Record<string, unknown> };
}

/** A ticket through nginx, an upgrade with it through nginx: the socket once `auth_ok`. */
async function signIn(user: string): Promise<ProtocolClient> {
  const issued = await viaProxy('/auth/ticket', await signToken(user));
  expect(issued.status).toBe(200);
  return resources.add(await ProtocolClient.withTicket(`${proxy.wsUrl}${nodes[0]!.wsPath}`, String(issued.body.ticket)), (c) => c.terminate());
}

beforeAll(async () => {
  buildCli();
  const redis = resources.add(await RedisServer.start(), (server) => server.stop());
  nodes = await Promise.all(['A', 'B'].map(async (name) => resources.add(await GatewayNode.start({ name, redis: ['--redis-url', redis.url] }), (n) => n.kill())));
  proxy = resources.add(await Nginx.start(nodes.map((node) => ({ name: node.name, host: '127.0.0.1', port: node.port }))), (p) => p.stop());
}, 60_000);

afterAll(() => resources.disposeAll());

describe('two nodes behind nginx (deploy/nginx.conf)', () => {
  it('stops with its whole process group: no worker is left behind holding the port', async () => {
    const extra = await Nginx.start(nodes.map((node) => ({ name: node.name, host: '127.0.0.1', port: node.port })));
    expect(extra.alive).toBe(true);
    await extra.stop();
    expect(extra.alive).toBe(false);
  }, 30_000);

  it(`spreads ${USERS} WebSockets over both nodes and reaches every one of them with a push through either`, async () => {
    const sockets = await Promise.all(Array.from({ length: USERS }, () => signIn('nina')));
    const counts = await Promise.all(nodes.map(async (node) => Number((await node.health()).body.connections)));
    expect(counts.reduce((a, b) => a + b)).toBe(USERS);
    expect(Math.min(...counts)).toBeGreaterThan(0);
    const pushed = await viaProxy('/api/users/nina/messages', API_KEY, { data: 'to every socket' });
    expect(pushed.status).toBe(200);
    for (const socket of sockets) await socket.next((frame) => frame.type === 'message' && frame.data === 'to every socket');
  }, 30_000);

  it(`skips a node killed -9: ${USERS} new users through nginx all get a ticket, a socket and a push`, async () => {
    const onA = async () => Number((await nodes[0]!.health()).body.connections);
    const before = await onA();
    await nodes[1]!.kill();
    const outcomes = await Promise.all(
      Array.from({ length: USERS }, async (_, i) => {
        const user = `late-${i}`;
        const socket = await signIn(user);
        expect((await viaProxy(`/api/users/${user}/messages`, API_KEY, { data: 'welcome' })).status).toBe(200);
        await socket.next((frame) => frame.type === 'message' && frame.data === 'welcome');
        return 'ok';
      }),
    );
    expect(outcomes).toEqual(Array.from({ length: USERS }, () => 'ok'));
    await until('every new socket on A', async () => (await onA()) === before + USERS, { timeoutMs: 5_000 });
  }, 30_000);
});
