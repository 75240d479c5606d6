import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { API_KEY, cleanEnv, SECRET } from '../../helpers.js';
import { signToken } from './clients.js';

const ROOT = fileURLToPath(new URL('../../../../../', import.meta.url));
const CLI = fileURLToPath(new URL('../../../dist/cli.js', import.meta.url));

export interface NodeOptions {
  readonly name: string;
  /** How the node reaches Redis, e.g. `['--redis-url', relay.url()]` or `['--redis-cluster-nodes', 'h:p,h:p']`. */
  readonly redis: readonly string[];
  /** More CLI flags, after the common ones (later flags win). */
  readonly args?: readonly string[];
  readonly env?: Record<string, string>;
  /** Interface to listen on; 127.0.0.1 by default. */
  readonly host?: string;
  /** A command the CLI runs under, e.g. `['ip', 'netns', 'exec', 'ns']` (it execs, so the pid stays the node's). */
  readonly prefix?: readonly string[];
}

export interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly headers: Headers;
}

/**
 * One `authsocket serve` process of the built CLI, driven only through its public surfaces (HTTP API
 * with the API key, `/auth/ticket`, `/healthz`, WebSockets) and signals (SIGSTOP, SIGCONT, SIGKILL).
 * Every node shares the test secret and API key; `--upgrade-rate-limit off` unless a test sets one.
 */
export class GatewayNode {
  readonly name: string;
  readonly child: ChildProcess;
  readonly output: { stdout: string; stderr: string };
  readonly url: string;
  readonly wsUrl: string;
  /** The path WebSocket upgrades are served on, e.g. `/ws`. */
  readonly wsPath: string;
  readonly port: number;
  readonly exited: Promise<number | null>;

  private constructor(
    name: string,
    child: ChildProcess,
    output: { stdout: string; stderr: string },
    { url, wsUrl }: { url: string; wsUrl: string },
    exited: Promise<number | null>,
  ) {
    this.name = name;
    this.child = child;
    this.output = output;
    this.url = url;
    this.wsUrl = wsUrl;
    this.wsPath = new URL(wsUrl).pathname;
    this.port = Number(new URL(url).port);
    this.exited = exited;
  }

  static async start({ name, redis, args = [], env = {}, host = '127.0.0.1', prefix = [] }: NodeOptions): Promise<GatewayNode> {
    const flags = [
      'serve',
      ...['--port', '0', '--host', host, '--jwt-secret', SECRET, '--api-key', API_KEY, '--log-level', 'info'],
      ...['--subscribe-topics', '*', '--publish-topics', '*', '--upgrade-rate-limit', 'off'],
      ...redis,
      ...args,
    ];
    const [command, ...commandArgs] = [...prefix, process.execPath, CLI, ...flags] as [string, ...string[]];
    // AUTHSOCKET_NODE_ID names the node in /healthz once the gateway knows the option; before, it is a logged warning.
    const child = spawn(command, commandArgs, { cwd: ROOT, env: cleanEnv({ AUTHSOCKET_NODE_ID: name, ...env }), stdio: ['ignore', 'pipe', 'pipe'] });
    const output = { stdout: '', stderr: '' };
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output.stdout += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output.stderr += chunk));
    const exited = once(child, 'close').then(([code]) => code as number | null);
    const listening = await new Promise<{ url: string; wsUrl: string }>((resolve, reject) => {
      const timer = setTimeout(() => fail(`did not start in 15 s`), 15_000);
      const onExit = (code: number | null) => fail(`exited with ${code}`);
      const onData = () => {
        for (const line of output.stdout.split('\n')) {
          if (!line.startsWith('{')) continue;
          const record = JSON.parse(line) as { msg?: string; url?: string; wsUrl?: string };
          if (record.msg === 'gateway listening' && record.url && record.wsUrl) {
            done();
            return resolve({ url: record.url, wsUrl: record.wsUrl });
          }
        }
      };
      const fail = (problem: string) => {
        done();
        child.kill('SIGKILL');
        reject(new Error(`node ${name} ${problem}:\n${output.stderr}${output.stdout.slice(-2_000)}`));
      };
      const done = () => {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.off('exit', onExit);
      };
      child.once('exit', onExit);
      child.stdout?.on('data', onData);
      onData();
    });
    return new GatewayNode(name, child, output, listening, exited);
  }

  /** A request with `Authorization: Bearer <bearer>` (the API key by default); the answer as JSON. */
  async request(
    method: string,
    path: string,
    init: { body?: unknown; bearer?: string | null; headers?: Record<string, string>; timeoutMs?: number } = {},
  ): Promise<Answer> {
    const bearer = init.bearer === undefined ? API_KEY : init.bearer;
    const headers: Record<string, string> = { ...(bearer === null ? {} : { authorization: `Bearer ${bearer}` }), ...init.headers };
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`${this.url}${path}`, {
      method,
      headers,
      signal: AbortSignal.timeout(init.timeoutMs ?? 15_000),
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
    const text = await response.text();
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      body = { text };
    }
    return { status: response.status, body, headers: response.headers };
  }

  /** `POST /api/topics/:topic/messages`, with an `Idempotency-Key` when given. */
  publish(topic: string, data: unknown, idempotencyKey?: string): Promise<Answer> {
    return this.request('POST', `/api/topics/${encodeURIComponent(topic)}/messages`, { body: { data }, headers: keyHeader(idempotencyKey) });
  }

  /** `POST /api/users/:user/messages`. */
  push(user: string, data: unknown, idempotencyKey?: string): Promise<Answer> {
    return this.request('POST', `/api/users/${encodeURIComponent(user)}/messages`, { body: { data }, headers: keyHeader(idempotencyKey) });
  }

  broadcast(data: unknown): Promise<Answer> {
    return this.request('POST', '/api/broadcast', { body: { data } });
  }

  revoke(user: string): Promise<Answer> {
    return this.request('POST', `/api/users/${encodeURIComponent(user)}/revoke`);
  }

  health(): Promise<Answer> {
    return this.request('GET', '/healthz', { bearer: null, timeoutMs: 3_000 });
  }

  /** `POST /auth/ticket` with a fresh JWT for `user`: the status, and the ticket when 200. */
  async issue(user: string): Promise<{ status: number; ticket?: string }> {
    const { status, body } = await this.request('POST', '/auth/ticket', { bearer: await signToken(user) });
    return { status, ...(typeof body.ticket === 'string' ? { ticket: body.ticket } : {}) };
  }

  async ticket(user: string): Promise<string> {
    const issued = await this.issue(user);
    if (issued.status !== 200 || !issued.ticket) throw new Error(`node ${this.name} answered ${issued.status} to a ticket request`);
    return issued.ticket;
  }

  /** Sends `signal` to the node's process (SIGSTOP freezes it, SIGCONT thaws it). */
  signal(signal: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }

  /** kill -9, and waits until it is gone. */
  async kill(): Promise<void> {
    this.signal('SIGCONT');
    this.signal('SIGKILL');
    await this.exited;
  }
}

function keyHeader(idempotencyKey: string | undefined): Record<string, string> {
  return idempotencyKey === undefined ? {} : { 'idempotency-key': idempotencyKey };
}
