import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, killGroup, type Refusal, RedisServer, SECRET, signToken, until } from './helpers.js';

/**
 * The issue's "done when", for real: 3 gateway processes (createGateway from @authsocket/server's
 * build, on this package's build) sharing one redis-server, driven over HTTP and WebSockets.
 */

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
const FIXTURE = path.join(here, 'fixtures/node.mjs');

/** Builds the server and this package (incremental): the node processes run their dist/. */
function build(): void {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-b', 'packages/server', 'packages/redis'], { cwd: root, stdio: 'pipe' });
}

class GatewayNode {
  readonly name: string;
  readonly #process: ChildProcess;
  readonly origin: string;
  readonly wsUrl: string;

  private constructor(name: string, child: ChildProcess, port: number) {
    this.name = name;
    this.#process = child;
    this.origin = `http://127.0.0.1:${port}`;
    this.wsUrl = `ws://127.0.0.1:${port}/`;
  }

  static start(name: string, redisUrl: string): Promise<GatewayNode> {
    const child = spawn(process.execPath, [FIXTURE], {
      cwd: root,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, REDIS_URL: redisUrl, JWT_SECRET: SECRET },
    });
    let output = '';
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) => settle(new Error(`node ${name} exited with ${code}:\n${output}`));
      const onOutput = (chunk: Buffer) => {
        output += chunk.toString();
        const line = /\{"port":(\d+)\}/.exec(output);
        if (line) settle(undefined, Number(line[1]));
      };
      const timer = setTimeout(() => settle(new Error(`node ${name} did not start:\n${output}`)), 10_000);
      const settle = (error: Error | undefined, port?: number) => {
        clearTimeout(timer);
        child.off('exit', onExit);
        child.stdout?.off('data', onOutput);
        child.stderr?.off('data', onOutput);
        child.stdout?.resume();
        child.stderr?.resume();
        if (port === undefined) reject(error);
        else resolve(new GatewayNode(name, child, port));
      };
      child.once('exit', onExit);
      child.stdout?.on('data', onOutput);
      child.stderr?.on('data', onOutput);
    });
  }

  async post(route: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${this.origin}${route}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  async status(): Promise<string> {
    const response = await fetch(`${this.origin}/test/status`);
    return ((await response.json()) as { status: string }).status;
  }

  /** `POST /auth/ticket` for `user`: the status, and the ticket when 200. */
  async issue(user: string): Promise<{ status: number; ticket?: string }> {
    const response = await fetch(`${this.origin}/auth/ticket`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await signToken(user)}` },
    });
    const body = (await response.json()) as { ticket?: string };
    return { status: response.status, ...(body.ticket ? { ticket: body.ticket } : {}) };
  }

  async ticket(user: string): Promise<string> {
    const issued = await this.issue(user);
    if (issued.status !== 200 || !issued.ticket) throw new Error(`node ${this.name} answered ${issued.status}`);
    return issued.ticket;
  }

  send(user: string, data: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
    return this.post('/test/send', { user, data });
  }

  stop(): Promise<void> {
    return killGroup(this.#process);
  }
}

/** The HTTP status an upgrade got: 101, or the refusal's. */
async function upgradeStatus(opening: Promise<Client>): Promise<number> {
  try {
    (await opening).close();
    return 101;
  } catch (error) {
    return (error as Refusal).status;
  }
}

let redis: RedisServer;
let nodes: GatewayNode[] = [];
let a: GatewayNode;
let b: GatewayNode;
let c: GatewayNode;
const clients: Client[] = [];

/** Tracks a client so it is closed after the file. */
function track<T extends Client>(client: T): T {
  clients.push(client);
  return client;
}

beforeAll(async () => {
  build();
  redis = await RedisServer.start();
  nodes = await Promise.all(['A', 'B', 'C'].map((name) => GatewayNode.start(name, redis.url)));
  [a, b, c] = nodes as [GatewayNode, GatewayNode, GatewayNode];
}, 90_000);

afterAll(async () => {
  for (const client of clients) client.ws.terminate();
  await Promise.all(nodes.map((node) => node.stop()));
  await redis?.stop();
});

describe('3 gateway processes on one Redis', () => {
  it('redeems a ticket issued on node A on node B, and refuses its replay on node C', async () => {
    const ticket = await a.ticket('alice');
    const onB = track(await Client.withTicket(b.wsUrl, ticket));
    expect(await onB.next('auth_ok')).toMatchObject({ type: 'auth_ok', user: 'alice' });
    await expect(Client.withTicket(c.wsUrl, ticket)).rejects.toEqual({ status: 401, body: expect.stringContaining('unauthorized') });
    await expect(Client.withTicket(a.wsUrl, ticket)).rejects.toMatchObject({ status: 401 });
  });

  it('lets exactly one of 50 concurrent redemptions of one ticket across the nodes through', async () => {
    const ticket = await b.ticket('bob');
    const statuses = await Promise.all(
      Array.from({ length: 50 }, (_, i) => upgradeStatus(Client.withTicket(nodes[i % 3]!.wsUrl, ticket))),
    );
    expect(statuses.filter((status) => status === 101)).toHaveLength(1);
    expect(statuses.filter((status) => status === 401)).toHaveLength(49);
  });

  it('gives a user with a connection on every node each push exactly once, in offset order', async () => {
    const sockets = await Promise.all(nodes.map((node) => Client.authenticated(node.wsUrl, 'carol').then(track)));
    const bystander = track(await Client.authenticated(b.wsUrl, 'dave'));
    const total = 45;
    // Pushed from all three nodes at once: the order is Redis's, the same everywhere.
    const sent = await Promise.all(Array.from({ length: total }, (_, i) => nodes[i % 3]!.send('carol', i)));
    expect(sent.every((response) => response.status === 200 && response.body.count === 1)).toBe(true);
    for (const socket of sockets) await socket.messagesUntil(total);
    await Promise.all([...sockets, bystander].map((socket) => socket.settle()));
    const [first] = sockets;
    for (const socket of sockets) {
      expect(socket.messages.map((m) => m.offset)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      expect(socket.data).toEqual(first!.data);
      expect([...socket.data].sort((x, y) => (x as number) - (y as number))).toEqual(Array.from({ length: total }, (_, i) => i));
    }
    expect(bystander.data).toEqual([]);
  });

  it('moves a client from node A to node B mid-stream with nothing lost and nothing twice', async () => {
    const total = 60;
    const first = track(await Client.authenticated(a.wsUrl, 'erin'));
    // Node C keeps pushing the whole time.
    const pushing = (async () => {
      for (let i = 0; i < total; i++) {
        await c.send('erin', i);
        await new Promise((resolve) => setTimeout(resolve, 3));
      }
    })();
    await first.messagesUntil(15);
    // What the client saw on A, and its last position: then A's socket is gone.
    const seen = first.messages.slice();
    first.ws.terminate();
    const last = seen.at(-1)!;
    const second = track(
      await Client.authenticated(b.wsUrl, 'erin', { 'user:erin': { epoch: last.epoch!, offset: last.offset! } }),
    );
    expect((await second.next('auth_ok')).streams?.['user:erin']).toEqual({ epoch: last.epoch, offset: last.offset, recovered: true });
    await pushing;
    await second.messagesUntil(total - seen.length);
    await second.settle();
    expect([...seen.map((m) => m.data), ...second.data]).toEqual(Array.from({ length: total }, (_, i) => i));
    expect(second.messages.map((m) => m.offset)).toEqual(
      Array.from({ length: total - seen.length }, (_, i) => last.offset! + 1 + i),
    );
  });

  it('closes a user’s sockets on nodes A and B when node C revokes them, and refuses their tickets', async () => {
    const onA = track(await Client.authenticated(a.wsUrl, 'frank'));
    const onB = track(await Client.authenticated(b.wsUrl, 'frank'));
    const outstanding = await a.ticket('frank');
    // Signed before the revocation (a token signed after it, in a later second, is rightly accepted).
    const earlierToken = await signToken('frank');
    const revoked = await c.post('/test/revoke', { user: 'frank' });
    expect(revoked.status).toBe(200);
    expect(await onA.closed).toEqual({ code: 4403, reason: 'revoked' });
    expect(await onB.closed).toEqual({ code: 4403, reason: 'revoked' });
    await expect(Client.withTicket(b.wsUrl, outstanding)).rejects.toMatchObject({ status: 401 });
    // A token issued before the revocation is refused at `auth` on every node too.
    const late = track(await Client.open(a.wsUrl));
    late.send({ type: 'auth', token: earlierToken });
    expect((await late.closed).code).toBe(4403);
  });

  it('fails closed while Redis is down, and recovers without restarting any node', async () => {
    const before = track(await Client.authenticated(a.wsUrl, 'gina'));
    const alsoBefore = track(await Client.authenticated(c.wsUrl, 'gina'));
    expect((await a.send('gina', 'before')).status).toBe(200);
    await before.messagesUntil(1);
    const position = before.messages[0]!;
    const unredeemed = await b.ticket('hank');

    await redis.kill();
    await until(async () => (await Promise.all(nodes.map((node) => node.status()))).every((s) => s === 'reconnecting'), 5_000, 'reconnecting');
    // Fail closed: no ticket issued, none redeemed unchecked, no push pretends to succeed.
    for (const node of nodes) expect((await node.issue('hank')).status).toBe(503);
    expect(await upgradeStatus(Client.withTicket(c.wsUrl, unredeemed))).toBe(503);
    expect((await a.send('gina', 'lost')).status).toBe(503);
    // Established connections stay open and answer.
    await before.settle();
    expect(before.ws.readyState).toBe(before.ws.OPEN);

    await redis.restart();
    await until(async () => (await Promise.all(nodes.map((node) => node.status()))).every((s) => s === 'ready'), 10_000, 'ready');

    // Tickets again, across nodes.
    const ticket = await a.ticket('hank');
    const hank = track(await Client.withTicket(c.wsUrl, ticket));
    expect(await hank.next('auth_ok')).toMatchObject({ user: 'hank' });
    // Resubscribed: a push from B reaches sockets opened on A and C before the outage, and the new one.
    expect((await b.post('/test/broadcast', { data: 'welcome back' })).status).toBe(200);
    for (const socket of [before, alsoBefore, hank]) {
      await until(() => socket.data.includes('welcome back'), 3_000, 'broadcast after restart');
    }
    // Redis lost the history: resuming from before the outage is reported, never silently partial.
    const resumed = track(
      await Client.authenticated(b.wsUrl, 'gina', { 'user:gina': { epoch: position.epoch!, offset: position.offset! } }),
    );
    const state = (await resumed.next('auth_ok')).streams?.['user:gina'];
    expect(state).toMatchObject({ recovered: false, offset: 0 });
    expect(state?.epoch).not.toBe(position.epoch);
    expect((await a.send('hank', 'fresh')).status).toBe(200);
    await until(() => hank.messages.find((m) => m.data === 'fresh'), 3_000, 'push after restart');
    expect(hank.messages.find((m) => m.data === 'fresh')).toMatchObject({ offset: 1, stream: 'user:hank' });
  });

  // `gina` on node A saw offset 1 of the old epoch before the restart above; the new epoch starts
  // again at 1, which the connection's per-epoch floor must not take for a duplicate.
  it('after Redis lost its data, still pushes to a connection that saw offsets of the old epoch', async () => {
    const socket = clients.find((client) => client.messages.some((m) => m.data === 'before'))!;
    expect((await a.send('gina', 'new epoch')).status).toBe(200);
    await until(() => socket.data.includes('new epoch'), 1_000, 'delivery in the new epoch');
  });
});
