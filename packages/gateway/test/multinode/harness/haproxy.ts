import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { until } from './cleanup.js';
import { freePorts } from './redis.js';

export interface Backend {
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

/**
 * The config the tests run HAProxy with: round robin over the nodes, health-checked on `GET /healthz`
 * every 300 ms (down after 2 failures, up after 2 successes), WebSocket tunnels kept for an hour,
 * `X-Forwarded-For` added. A stand-in until deploy/haproxy.cfg (branch wt-gw) lands: then the tests
 * should load that file with the ports filled in.
 */
export function haproxyConfig(port: number, statsSocket: string, backends: readonly Backend[]): string {
  return [
    'global',
    '  maxconn 4096',
    `  stats socket ${statsSocket} mode 600 level admin`,
    'defaults',
    '  mode http',
    '  timeout connect 1s',
    '  timeout client 60s',
    '  timeout server 60s',
    '  timeout tunnel 1h',
    '  option http-server-close',
    'frontend gateway',
    `  bind 127.0.0.1:${port}`,
    '  option forwardfor',
    '  default_backend nodes',
    'backend nodes',
    '  balance roundrobin',
    '  option httpchk GET /healthz',
    '  http-check expect status 200',
    '  retry-on conn-failure empty-response',
    '  retries 2',
    '  option redispatch',
    '  default-server inter 300ms fall 2 rise 2',
    ...backends.map((backend) => `  server ${backend.name} ${backend.host}:${backend.port} check`),
    '',
  ].join('\n');
}

/** A real `haproxy -db` on a free loopback port, with its own config and admin socket; stopped by PID. */
export class Haproxy {
  readonly port: number;
  readonly dir: string;
  readonly #process: ChildProcess;
  readonly #socket: string;
  #output = '';

  private constructor(port: number, dir: string, child: ChildProcess, socket: string) {
    this.port = port;
    this.dir = dir;
    this.#process = child;
    this.#socket = socket;
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (this.#output += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.#output += chunk));
  }

  static async start(backends: readonly Backend[]): Promise<Haproxy> {
    const [port] = (await freePorts(1)) as [number];
    const dir = mkdtempSync(path.join(tmpdir(), 'authsocket-haproxy-'));
    const socket = path.join(dir, 'admin.sock');
    const config = path.join(dir, 'haproxy.cfg');
    writeFileSync(config, haproxyConfig(port, socket, backends));
    const child = spawn('haproxy', ['-f', config, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const proxy = new Haproxy(port, dir, child, socket);
    try {
      await until('haproxy listens', () => proxy.exitedEarly() || proxy.accepts(), { timeoutMs: 5_000, intervalMs: 50 });
    } catch (error) {
      await proxy.stop();
      throw error;
    }
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  private exitedEarly(): false {
    if (this.#process.exitCode !== null) throw new Error(`haproxy exited with ${this.#process.exitCode}:\n${this.#output}`);
    return false;
  }

  private accepts(): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = net.connect(this.port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
  }

  /** A command on the admin socket, e.g. `show servers state`. */
  command(line: string): Promise<string> {
    return new Promise((resolve, reject) => {
      let answer = '';
      const socket = net.connect(this.#socket, () => socket.end(`${line}\n`));
      socket.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk));
      socket.on('end', () => resolve(answer));
      socket.on('error', reject);
    });
  }

  /** The health-check status HAProxy holds for each server: `UP`, `DOWN`, ... (from `show stat`). */
  async serverStatus(): Promise<Record<string, string>> {
    const csv = await this.command('show stat');
    const [header, ...rows] = csv.replace(/^# /, '').trim().split('\n');
    const columns = (header ?? '').split(',');
    const at = (name: string) => columns.indexOf(name);
    const status: Record<string, string> = {};
    for (const row of rows) {
      const cells = row.split(',');
      if (cells[at('pxname')] === 'nodes' && cells[at('svname')] !== 'BACKEND') status[cells[at('svname')]!] = (cells[at('status')] ?? '').split(' ')[0]!;
    }
    return status;
  }

  async stop(): Promise<void> {
    const child = this.#process;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGKILL');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
