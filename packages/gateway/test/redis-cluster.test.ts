import { once } from 'node:events';
import { SUBPROTOCOL, type ServerMessage, TICKET_PROTOCOL_PREFIX } from '@authsocket/protocol';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
// Test-only import across packages: the redis package's real redis-server helper (node built-ins only).
import { RedisServer } from '../../redis/test/redis-server.js';
import { API_KEY, buildCli, type CliProcess, SECRET, spawnCli, TestClient } from './helpers.js';

/**
 * Issue 7's "done when", for real: 3 processes of the built `authsocket serve` CLI sharing one
 * redis-server through --redis-url, driven only through their public surfaces: the HTTP API with the
 * API key, POST /auth/ticket, GET /healthz and WebSockets.
 */

type Message = Extract<ServerMessage, { type: 'message' }>;
type AuthOk = Extract<ServerMessage, { type: 'auth_ok' }>;
type Position = { epoch: string; offset: number };

/** Waits for `check` to stop throwing (polling every 20 ms). */
const eventually = <T>(check: () => T | Promise<T>, timeout = 5_000) => vi.waitFor(check, { timeout, interval: 20 });

class GatewayNode {
  readonly name: string;
  readonly process: CliProcess;
  readonly url: string;
  readonly wsUrl: string;

  private constructor(name: string, process: CliProcess, url: string, wsUrl: string) {
    this.name = name;
    this.process = process;
    this.url = url;
    this.wsUrl = wsUrl;
  }

  /** Spawns the CLI and resolves once its JSON 'gateway listening' line names the bound port. */
  static async start(name: string, redisUrl: string, started: CliProcess[]): Promise<GatewayNode> {
    const args = ['serve', '--port', '0', '--host', '127.0.0.1', '--redis-url', redisUrl, '--node-id', name];
    const node = spawnCli([...args, '--jwt-secret', SECRET, '--api-key', API_KEY, '--log-level', 'info']);
    started.push(node);
    const listening = await new Promise<{ url: string; wsUrl: string }>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`node ${name} did not start:\n${node.output.stderr}`)), 15_000);
      const onExit = (code: number | null) => fail(new Error(`node ${name} exited with ${code}:\n${node.output.stderr}`));
      const onData = () => {
        for (const line of node.output.stdout.split('\n')) {
          if (!line.startsWith('{')) continue;
          const record = JSON.parse(line) as { msg?: string; url?: string; wsUrl?: string };
          if (record.msg === 'gateway listening' && record.url && record.wsUrl) {
            done();
            return resolve({ url: record.url, wsUrl: record.wsUrl });
          }
        }
      };
      const fail = (error: Error) => {
        done();
        reject(error);
      };
      const done = () => {
        clearTimeout(timer);
        node.child.stdout?.off('data', onData);
        node.child.off('exit', onExit);
      };
      node.child.once('exit', onExit);
      node.child.stdout?.on('data', onData);
      onData();
    });
    return new GatewayNode(name, node, listening.url, listening.wsUrl);
  }

  /** A request with `Authorization: Bearer <bearer>` (the API key by default) and a JSON answer. */
  async request(method: string, path: string, init: { body?: unknown; bearer?: string | null } = {}) {
    const bearer = init.bearer === undefined ? API_KEY : init.bearer;
    const headers: Record<string, string> = bearer === null ? {} : { authorization: `Bearer ${bearer}` };
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`${this.url}${path}`, {
      method,
      headers,
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  /** `POST /api/users/:user/messages`. */
  send(user: string, data: unknown) {
    return this.request('POST', `/api/users/${encodeURIComponent(user)}/messages`, { body: { data } });
  }

  health() {
    return this.request('GET', '/healthz', { bearer: null });
  }

  /** `POST /auth/ticket` with a fresh JWT for `user`: the status, and the ticket when 200. */
  async issue(user: string): Promise<{ status: number; ticket?: string }> {
    const { status, body } = await this.request('POST', '/auth/ticket', { bearer: await signToken(user) });
    return { status, ...(typeof body.ticket === 'string' ? { ticket: body.ticket } : {}) };
  }

  async ticket(user: string): Promise<string> {
    const issued = await this.issue(user);
    if (issued.status !== 200 || !issued.ticket) throw new Error(`node ${this.name} answered ${issued.status}`);
    return issued.ticket;
  }
}

/** An HS256 JWT for `sub`, signed with the nodes' --jwt-secret. */
function signToken(sub: string): Promise<string> {
  const iat = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt(iat)
    .setExpirationTime(iat + 300)
    .sign(new TextEncoder().encode(SECRET));
}

const clients: TestClient[] = [];

function withTicket(wsUrl: string, ticket: string): TestClient {
  const client = new TestClient(wsUrl, [SUBPROTOCOL, `${TICKET_PROTOCOL_PREFIX}${ticket}`]);
  clients.push(client);
  return client;
}

/** First-message auth, with `resume` positions if any; resolves on `auth_ok`. */
async function authenticated(wsUrl: string, user: string, resume?: Record<string, Position>): Promise<TestClient> {
  const client = new TestClient(wsUrl, [SUBPROTOCOL]);
  clients.push(client);
  await once(client.socket, 'open');
  client.send({ type: 'auth', token: await signToken(user), ...(resume ? { resume } : {}) });
  await authOk(client);
  return client;
}

async function authOk(client: TestClient): Promise<AuthOk> {
  return (await client.next((frame) => frame.type === 'auth_ok')) as AuthOk;
}

/** The HTTP status a ticket upgrade got: 101, or the refusal's. */
function upgradeStatus(wsUrl: string, ticket: string): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(wsUrl, [SUBPROTOCOL, `${TICKET_PROTOCOL_PREFIX}${ticket}`]);
    ws.on('error', () => {});
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (request, response) => {
      resolve(response.statusCode ?? 0);
      request.destroy();
    });
  });
}

const messages = (client: TestClient): Message[] => client.frames.filter((frame): frame is Message => frame.type === 'message');
const data = (client: TestClient): unknown[] => messages(client).map((message) => message.data);

async function messagesUntil(client: TestClient, count: number, timeout = 5_000): Promise<void> {
  await eventually(() => expect(messages(client).length).toBeGreaterThanOrEqual(count), timeout);
}

/** Round-trips a ping, so every frame the node sent before it has arrived. */
async function settle(client: TestClient): Promise<void> {
  const id = `settle-${Math.random().toString(36).slice(2)}`;
  client.send({ type: 'ping', id });
  await client.next((frame) => frame.type === 'pong' && frame.id === id);
}

let redis: RedisServer;
const started: CliProcess[] = [];
let nodes: GatewayNode[] = [];
let a: GatewayNode;
let b: GatewayNode;
let c: GatewayNode;

async function everyHealth(status: number, body: Record<string, unknown>, timeout: number): Promise<void> {
  await eventually(async () => {
    for (const node of nodes) expect(await node.health()).toMatchObject({ status, body });
  }, timeout);
}

beforeAll(async () => {
  buildCli();
  redis = await RedisServer.start();
  nodes = await Promise.all(['A', 'B', 'C'].map((name) => GatewayNode.start(name, redis.url, started)));
  [a, b, c] = nodes as [GatewayNode, GatewayNode, GatewayNode];
  // A node listens before its Redis link is up: wait until each reports it ready.
  await everyHealth(200, { status: 'ok', broker: 'ready' }, 10_000);
}, 120_000);

afterAll(async () => {
  for (const client of clients) client.socket.terminate();
  await Promise.all(
    started.map((node) => {
      node.child.kill('SIGKILL');
      return node.exited;
    }),
  );
  await redis?.stop();
});

describe('3 processes of the authsocket CLI on one Redis', () => {
  it('redeems a ticket issued on node A on node B, and refuses its replay on node C', async () => {
    const ticket = await a.ticket('alice');
    const onB = withTicket(b.wsUrl, ticket);
    expect(await authOk(onB)).toMatchObject({ type: 'auth_ok', user: 'alice' });
    expect(await upgradeStatus(c.wsUrl, ticket)).toBe(401);
    expect(await upgradeStatus(a.wsUrl, ticket)).toBe(401);
  });

  it('lets exactly one of 50 concurrent redemptions of one ticket across the nodes through', async () => {
    const ticket = await b.ticket('bob');
    const statuses = await Promise.all(Array.from({ length: 50 }, (_, i) => upgradeStatus(nodes[i % 3]!.wsUrl, ticket)));
    expect(statuses.filter((status) => status === 101)).toHaveLength(1);
    expect(statuses.filter((status) => status === 401)).toHaveLength(49);
  });

  it('gives a user with a connection on every node each push exactly once, in offset order', async () => {
    const sockets = await Promise.all(nodes.map((node) => authenticated(node.wsUrl, 'carol')));
    const bystander = await authenticated(b.wsUrl, 'dave');
    const total = 45;
    // Pushed through all three nodes' APIs at once: the order is Redis's, the same everywhere.
    const sent = await Promise.all(Array.from({ length: total }, (_, i) => nodes[i % 3]!.send('carol', i)));
    // Each node counts the one connection it delivered to itself, and says which node it is.
    sent.forEach((response, i) => expect(response).toEqual({ status: 200, body: { deliveredLocally: 1, node: nodes[i % 3]!.name } }));
    for (const socket of sockets) await messagesUntil(socket, total);
    await Promise.all([...sockets, bystander].map(settle));
    const [first] = sockets;
    for (const socket of sockets) {
      expect(messages(socket).map((m) => m.offset)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      expect(data(socket)).toEqual(data(first!));
      expect([...data(socket)].sort((x, y) => (x as number) - (y as number))).toEqual(Array.from({ length: total }, (_, i) => i));
    }
    expect(data(bystander)).toEqual([]);
  });

  it('moves a client from node A to node B mid-stream with nothing lost and nothing twice', async () => {
    const total = 60;
    const first = await authenticated(a.wsUrl, 'erin');
    // Node C's API keeps pushing the whole time.
    const pushing = (async () => {
      for (let i = 0; i < total; i++) {
        expect((await c.send('erin', i)).status).toBe(200);
        await new Promise((resolve) => setTimeout(resolve, 3));
      }
    })();
    await messagesUntil(first, 15);
    // What the client saw on A, and its last position: then A's socket is gone.
    const seen = messages(first);
    first.socket.terminate();
    const last = seen.at(-1)!;
    const second = await authenticated(b.wsUrl, 'erin', { 'user:erin': { epoch: last.epoch!, offset: last.offset! } });
    expect((await authOk(second)).streams?.['user:erin']).toEqual({ epoch: last.epoch, offset: last.offset, recovered: true });
    await pushing;
    await messagesUntil(second, total - seen.length);
    await settle(second);
    expect([...seen.map((m) => m.data), ...data(second)]).toEqual(Array.from({ length: total }, (_, i) => i));
    expect(messages(second).map((m) => m.offset)).toEqual(Array.from({ length: total - seen.length }, (_, i) => last.offset! + 1 + i));
  });

  it('closes a user’s sockets on nodes A and B with 4403 when node C revokes them, and refuses their tickets', async () => {
    const onA = await authenticated(a.wsUrl, 'frank');
    const onB = await authenticated(b.wsUrl, 'frank');
    const outstanding = await a.ticket('frank');
    // Signed before the revocation (a token signed after it, in a later second, is rightly accepted).
    const earlierToken = await signToken('frank');
    expect(await c.request('POST', '/api/users/frank/revoke')).toEqual({ status: 200, body: { closedLocally: 0, node: 'C' } });
    expect(await onA.closed).toEqual({ code: 4403, reason: 'revoked' });
    expect(await onB.closed).toEqual({ code: 4403, reason: 'revoked' });
    expect(await upgradeStatus(b.wsUrl, outstanding)).toBe(401);
    // A token issued before the revocation is refused at `auth` on every node too.
    const late = new TestClient(a.wsUrl, [SUBPROTOCOL]);
    clients.push(late);
    await once(late.socket, 'open');
    late.send({ type: 'auth', token: earlierToken });
    expect((await late.closed).code).toBe(4403);
    expect(await a.request('GET', '/api/users/frank/connections')).toEqual({ status: 200, body: { connections: [], count: 0, connectedLocally: 0, node: 'A' } });
  });

  it('fails closed while Redis is down, reports degraded health, and recovers without restarting any node', async () => {
    const before = await authenticated(a.wsUrl, 'gina');
    const alsoBefore = await authenticated(c.wsUrl, 'gina');
    expect((await a.send('gina', 'before')).status).toBe(200);
    await messagesUntil(before, 1);
    const position = messages(before)[0]!;
    const unredeemed = await b.ticket('hank');

    await redis.kill();
    await everyHealth(503, { status: 'degraded', broker: 'reconnecting' }, 5_000);
    // Fail closed: no ticket issued, none redeemed unchecked, no push pretends to succeed.
    for (const node of nodes) expect((await node.issue('hank')).status).toBe(503);
    expect(await upgradeStatus(c.wsUrl, unredeemed)).toBe(503);
    expect(await a.send('gina', 'lost')).toEqual({ status: 503, body: { error: 'service unavailable', code: 'unavailable' } });
    // The registry cannot answer either: 503, not an empty list.
    expect(await b.request('GET', '/api/users/gina/connections')).toEqual({ status: 503, body: { error: 'service unavailable', code: 'unavailable' } });
    // Established connections stay open and answer.
    await settle(before);
    expect(before.socket.readyState).toBe(WebSocket.OPEN);

    await redis.restart();
    // The CLI's reconnection backoff is capped at 2 s.
    await everyHealth(200, { status: 'ok', broker: 'ready' }, 10_000);
    // Redis came back empty: each node finds its lease gone at its next renewal (a third of the
    // 10 s lease) and writes its connections again, so gina's two sockets are listed once more.
    await eventually(async () => expect((await b.request('GET', '/api/users/gina/connections')).body).toMatchObject({ count: 2 }), 8_000);

    // Tickets again, across nodes.
    const ticket = await a.ticket('hank');
    const hank = withTicket(c.wsUrl, ticket);
    expect(await authOk(hank)).toMatchObject({ user: 'hank' });
    // Resubscribed: a broadcast through B reaches sockets opened on A and C before the outage, and the new one.
    expect((await b.request('POST', '/api/broadcast', { body: { data: 'welcome back' } })).status).toBe(200);
    for (const socket of [before, alsoBefore, hank]) {
      await eventually(() => expect(data(socket)).toContain('welcome back'), 3_000);
    }
    // Redis lost the history: resuming from before the outage is reported, never silently partial.
    const resumed = await authenticated(b.wsUrl, 'gina', { 'user:gina': { epoch: position.epoch!, offset: position.offset! } });
    const state = (await authOk(resumed)).streams?.['user:gina'];
    expect(state).toMatchObject({ recovered: false, offset: 0 });
    expect(state?.epoch).not.toBe(position.epoch);
    expect((await a.send('hank', 'fresh')).status).toBe(200);
    await eventually(() => expect(messages(hank).find((m) => m.data === 'fresh')).toMatchObject({ offset: 1, stream: 'user:hank' }), 3_000);
  });

  // `gina`'s sockets on nodes A and C saw offset 1 of the old epoch before the restart above. What
  // the old epoch held after it is gone with Redis's data: a push of the new epoch must not reach
  // them as if nothing were missing. They close 4009, and their resume reports the loss.
  it('after Redis lost its data, a connection that saw the old epoch is told to resume, and the resume says recovered: false', async () => {
    const old = clients.filter((client) => data(client).includes('before'));
    expect(old).toHaveLength(2);
    expect((await a.send('gina', 'new epoch')).status).toBe(200);
    for (const socket of old) expect(await socket.closed).toEqual({ code: 4009, reason: 'stream gap: resume' });
    for (const socket of old) expect(data(socket)).not.toContain('new epoch');
    const position = messages(old[0]!).find((message) => message.data === 'before')!;
    const resumed = await authenticated(b.wsUrl, 'gina', { 'user:gina': { epoch: position.epoch!, offset: position.offset! } });
    expect((await authOk(resumed)).streams?.['user:gina']).toMatchObject({ recovered: false, offset: 1 });
  });
});
