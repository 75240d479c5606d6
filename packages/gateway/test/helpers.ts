import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SUBPROTOCOL, type ServerMessage, TICKET_PROTOCOL_PREFIX } from '@authsocket/protocol';
import type { Clock } from '@authsocket/server';
import { WebSocket } from 'ws';
import { type Environment, loadConfig, type RunningGateway, startGateway } from '../src/index.js';

export const SECRET = 'gateway-test-secret-of-at-least-32-bytes';
export const API_KEY = 'test-api-key-0123456789';

/** JSON log lines the gateway wrote, as text and parsed. */
export class LogCapture {
  readonly lines: string[] = [];

  write(line: string): void {
    this.lines.push(line);
  }

  get text(): string {
    return this.lines.join('');
  }

  get records(): Record<string, unknown>[] {
    return this.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  }
}

export interface TestGateway extends RunningGateway {
  readonly logs: LogCapture;
  /** `fetch` against this gateway; `apiKey` adds the API's bearer header. */
  request(path: string, init?: RequestInit & { apiKey?: string; json?: unknown }): Promise<Response>;
}

const running = new Set<RunningGateway>();

/**
 * Starts a gateway in this process on 127.0.0.1:0 from CLI-style arguments, through `loadConfig`
 * as the CLI does. Stop every gateway with `stopAll()` in `afterEach`.
 */
export async function start(
  args: readonly string[] = ['--demo'],
  { env = {}, clock }: { env?: Environment; clock?: Clock } = {},
): Promise<TestGateway> {
  const logs = new LogCapture();
  const { config } = loadConfig(['--port', '0', '--host', '127.0.0.1', '--log-level', 'silent', ...args], env);
  const gateway = await startGateway(config, { logDestination: logs, ...(clock ? { clock } : {}) });
  running.add(gateway);
  return {
    ...gateway,
    logs,
    request(path, { apiKey, json, headers, ...init } = {}) {
      const merged = new Headers(headers);
      if (apiKey !== undefined) merged.set('authorization', `Bearer ${apiKey}`);
      if (json !== undefined) merged.set('content-type', 'application/json');
      return fetch(`${gateway.url}${path}`, {
        ...init,
        headers: merged,
        ...(json !== undefined ? { body: JSON.stringify(json), method: init.method ?? 'POST' } : {}),
      });
    },
  };
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((gateway) => gateway.close()));
  running.clear();
}

/** `POST /auth/login` as a demo user; returns the JWT. */
export async function login(gateway: TestGateway, username = 'alice', password = DEMO_PASSWORDS[username]): Promise<string> {
  const response = await gateway.request('/auth/login', { json: { username, password } });
  if (response.status !== 200) throw new Error(`login answered ${response.status}`);
  return ((await response.json()) as { token: string }).token;
}

export const DEMO_PASSWORDS: Readonly<Record<string, string>> = { alice: 'wonderland', bob: 'builder', carol: 'christmas' };

/** `POST /auth/ticket` with `token`; returns the ticket. */
export async function ticket(gateway: TestGateway, token: string): Promise<string> {
  const response = await gateway.request('/auth/ticket', { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  if (response.status !== 200) throw new Error(`ticket endpoint answered ${response.status}`);
  return ((await response.json()) as { ticket: string }).ticket;
}

/** A `ws` client that records every frame and its close. */
export class TestClient {
  readonly socket: WebSocket;
  readonly frames: ServerMessage[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly #waiters = new Set<() => void>();

  constructor(url: string, protocols: string[]) {
    this.socket = new WebSocket(url, protocols);
    this.socket.on('error', () => {});
    this.socket.on('message', (data) => {
      this.frames.push(JSON.parse(String(data)) as ServerMessage);
      for (const wake of this.#waiters) wake();
    });
    this.closed = new Promise((resolve) => {
      this.socket.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        for (const wake of this.#waiters) wake();
      });
    });
  }

  send(frame: Record<string, unknown>): void {
    this.socket.send(JSON.stringify(frame));
  }

  /** The first recorded frame matching `predicate`, waiting up to `ms` for it. */
  next(predicate: (frame: ServerMessage) => boolean, ms = 5_000): Promise<ServerMessage> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.frames.find(predicate);
        if (found) {
          done();
          resolve(found);
        } else if (this.socket.readyState === WebSocket.CLOSED) {
          done();
          reject(new Error(`socket closed before the expected frame; got ${JSON.stringify(this.frames)}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching frame within ${ms} ms; got ${JSON.stringify(this.frames)}`));
      }, ms);
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }

  close(): void {
    this.socket.close();
  }
}

/** Logs in as `user`, gets a ticket and opens a socket with it; resolves on `auth_ok`. */
export async function connectAs(gateway: TestGateway, user = 'alice'): Promise<{ client: TestClient; token: string; ticket: string }> {
  const token = await login(gateway, user);
  const issued = await ticket(gateway, token);
  const client = new TestClient(gateway.wsUrl, [SUBPROTOCOL, `${TICKET_PROTOCOL_PREFIX}${issued}`]);
  await client.next((frame) => frame.type === 'auth_ok');
  return { client, token, ticket: issued };
}

/** Subscribes `client` to `topic` and waits for the answer (ack or error). */
export async function subscribe(client: TestClient, topic: string, id = `sub-${topic}`): Promise<ServerMessage> {
  client.send({ type: 'subscribe', topic, id });
  return client.next((frame) => (frame.type === 'ack' || frame.type === 'error') && frame.id === id);
}

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

/** Builds the CLI and what it imports (incremental): child processes run plain JavaScript from dist/. */
export function buildCli(): void {
  execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-b', 'packages/gateway'], {
    cwd: ROOT,
    stdio: 'pipe',
  });
}

/** The environment without this machine's AUTHSOCKET_* and PORT, so the spawned CLI sees only the test's. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('AUTHSOCKET_') && name !== 'PORT'),
  );
  return { ...env, ...extra };
}

export interface CliProcess {
  readonly child: ChildProcess;
  /** Everything the process wrote so far. */
  readonly output: { stdout: string; stderr: string };
  /** The exit code, once the process has exited and its output has been read. */
  readonly exited: Promise<number | null>;
}

/** Spawns `node packages/gateway/dist/cli.js ...args` directly (no npx: a kill reaches the gateway itself). */
export function spawnCli(args: readonly string[], env: Record<string, string> = {}): CliProcess {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  const output = { stdout: '', stderr: '' };
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output.stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output.stderr += chunk));
  // 'close', not 'exit': only then has all of the child's output been read.
  const exited = once(child, 'close').then(([code]) => code as number | null);
  return { child, output, exited };
}
