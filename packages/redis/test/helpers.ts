import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SUBPROTOCOL, type ServerMessage, TICKET_PROTOCOL_PREFIX } from '@authsocket/protocol';
import { SignJWT } from 'jose';
import { WebSocket } from 'ws';

export const SECRET = 'redis-test-secret-that-is-at-least-32-bytes!';

/** `count` distinct ports nothing listens on right now (never 6379, never `--port 0`). */
export async function freePorts(count: number): Promise<number[]> {
  // Held open together, so the OS cannot hand out the same port twice.
  const servers = Array.from({ length: count }, () => net.createServer());
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))));
  const ports = servers.map((server) => (server.address() as net.AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  return ports;
}

export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}

/** Kills a process started with `detached: true` (its whole group) and waits for it to exit. */
export async function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    process.kill(-child.pid, signal);
  } catch {
    return;
  }
  await exited;
}

/**
 * A real `redis-server` on a free loopback port, from a fresh temporary directory, with no
 * persistence and no system config. A missing binary fails the test (scripts/system-deps.sh installs it).
 */
export class RedisServer {
  readonly port: number;
  readonly dir: string;
  readonly #args: readonly string[];
  #process: ChildProcess | undefined;

  private constructor(port: number, args: readonly string[]) {
    this.port = port;
    this.#args = args;
    this.dir = mkdtempSync(path.join(tmpdir(), 'authsocket-redis-'));
  }

  /** `extraArgs` go after the defaults, e.g. `['--user', 'app', 'on', '>secret', ...]`. */
  static async start(extraArgs: readonly string[] = [], port?: number): Promise<RedisServer> {
    const server = new RedisServer(port ?? (await freePort()), extraArgs);
    await server.restart();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts (again) on the same port, with an empty data set. */
  async restart(): Promise<void> {
    if (this.#process) throw new Error('redis-server is already running');
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir];
    const child = spawn('redis-server', [...args, ...this.#args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.#process = child;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error) =>
        settle(new Error(`cannot run redis-server (${error.message}); install it with scripts/system-deps.sh`));
      const onExit = (code: number | null) => settle(new Error(`redis-server exited with ${code}:\n${output}`));
      const onOutput = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) settle();
      };
      const timer = setTimeout(() => settle(new Error(`redis-server did not start in 5 s:\n${output}`)), 5_000);
      // Listeners are removed once settled: later output must not touch anyone else's 'exit' listener.
      const settle = (error?: Error) => {
        clearTimeout(timer);
        child.off('error', onError);
        child.off('exit', onExit);
        child.stdout?.off('data', onOutput);
        child.stderr?.off('data', onOutput);
        // Keep draining the pipes so a chatty server never blocks on a full one.
        child.stdout?.resume();
        child.stderr?.resume();
        if (error) {
          this.#process = undefined;
          reject(error);
        } else {
          resolve();
        }
      };
      child.once('error', onError);
      child.once('exit', onExit);
      child.stdout?.on('data', onOutput);
      child.stderr?.on('data', onOutput);
    });
  }

  /** Kills the server at once (SIGKILL): connections drop without a goodbye, data is gone. */
  async kill(): Promise<void> {
    const child = this.#process;
    this.#process = undefined;
    if (child) await killGroup(child);
  }

  /** Freezes (SIGSTOP) or thaws (SIGCONT) the server: connections stay open but nothing answers. */
  signal(signal: 'SIGSTOP' | 'SIGCONT'): void {
    if (this.#process?.pid !== undefined) process.kill(this.#process.pid, signal);
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A TCP proxy in front of Redis whose link can be cut, to partition one node from Redis. */
export class TcpProxy {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  #cut = false;

  private constructor(targetPort: number) {
    this.#server = net.createServer((client) => {
      if (this.#cut) return client.destroy();
      const upstream = net.connect(targetPort, '127.0.0.1');
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket);
        socket.on('error', () => {});
        socket.on('close', () => {
          this.#sockets.delete(socket);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
  }

  static async start(targetPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(targetPort);
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `redis://127.0.0.1:${(this.#server.address() as net.AddressInfo).port}`;
  }

  /** Drops every proxied connection and refuses new ones until `heal()`. */
  cut(): void {
    this.#cut = true;
    for (const socket of this.#sockets) socket.destroy();
  }

  heal(): void {
    this.#cut = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** An HS256 JWT for `sub`, valid for `expiresIn` seconds. */
export function signToken(sub: string, expiresIn = 300): Promise<string> {
  const iat = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt(iat)
    .setExpirationTime(iat + expiresIn)
    .sign(new TextEncoder().encode(SECRET));
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function until<T>(check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 5_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export interface Refusal {
  readonly status: number;
  readonly body: string;
}

/** A raw protocol client: collects frames, exposes the close code. */
export class Client {
  readonly ws: WebSocket;
  readonly frames: ServerMessage[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  #waiters: Array<() => void> = [];

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data: Buffer) => {
      this.frames.push(JSON.parse(data.toString()) as ServerMessage);
      this.#wake();
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        this.#wake();
      }),
    );
  }

  /** Opens a socket offering `authsocket.v1` plus `extra`; rejects with the HTTP refusal. */
  static open(url: string, extra: string[] = []): Promise<Client> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, [SUBPROTOCOL, ...extra]);
      ws.on('error', () => {});
      const client = new Client(ws);
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_request, response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => {
          body += chunk.toString();
        });
        response.on('end', () => reject({ status: response.statusCode ?? 0, body } satisfies Refusal));
      });
    });
  }

  static withTicket(url: string, ticket: string): Promise<Client> {
    return Client.open(url, [`${TICKET_PROTOCOL_PREFIX}${ticket}`]);
  }

  /** First-message auth (with `resume` positions, if any); waits for `auth_ok`. */
  static async authenticated(url: string, user: string, resume?: Record<string, { epoch: string; offset: number }>): Promise<Client> {
    const client = await Client.open(url);
    client.send({ type: 'auth', token: await signToken(user), ...(resume ? { resume } : {}) });
    await client.next('auth_ok');
    return client;
  }

  send(frame: unknown): void {
    this.ws.send(JSON.stringify(frame));
  }

  /** The `data` of every `message` frame so far. */
  get data(): unknown[] {
    return this.frames.flatMap((frame) => (frame.type === 'message' ? [frame.data] : []));
  }

  get messages(): Extract<ServerMessage, { type: 'message' }>[] {
    return this.frames.filter((frame): frame is Extract<ServerMessage, { type: 'message' }> => frame.type === 'message');
  }

  async next<T extends ServerMessage['type']>(type: T): Promise<Extract<ServerMessage, { type: T }>> {
    for (;;) {
      const found = this.frames.find((frame) => frame.type === type);
      if (found) return found as Extract<ServerMessage, { type: T }>;
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error(`socket closed before a '${type}' frame`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Waits until `count` message frames have arrived; fails after `timeoutMs`. */
  async messagesUntil(count: number, timeoutMs = 5_000): Promise<unknown[]> {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.#wake();
    }, timeoutMs);
    try {
      for (;;) {
        if (this.messages.length >= count) return this.data;
        if (this.ws.readyState === WebSocket.CLOSED) throw new Error(`socket closed after ${this.messages.length} messages`);
        if (timedOut) throw new Error(`only ${this.messages.length} of ${count} messages arrived`);
        await new Promise<void>((resolve) => this.#waiters.push(resolve));
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** Round-trips a ping, so every frame the server sent before it has arrived. */
  async settle(): Promise<void> {
    const id = `settle-${Math.random().toString(36).slice(2)}`;
    this.send({ type: 'ping', id });
    for (;;) {
      if (this.frames.some((frame) => frame.type === 'pong' && frame.id === id)) return;
      if (this.ws.readyState === WebSocket.CLOSED) return;
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  close(): void {
    this.ws.close();
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }
}
