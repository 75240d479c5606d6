import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { until } from './cleanup.js';
import { freePorts } from './redis.js';

export interface Backend {
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

const DEPLOY = fileURLToPath(new URL('../../../../../deploy/', import.meta.url));

/**
 * A config shipped in deploy/, for this test: its `listen` line on `port` (loopback) and its server
 * lines replaced by `backends`, everything else as shipped. Throws if the file no longer has the lines
 * rewritten, so that drift shows.
 */
function shippedConfig(
  file: string,
  listen: RegExp,
  listenOn: string,
  server: RegExp,
  serverLine: (backend: Backend, shipped: string) => string,
  backends: readonly Backend[],
): string {
  const shipped = readFileSync(path.join(DEPLOY, file), 'utf8');
  if (!listen.test(shipped) || !server.test(shipped)) throw new Error(`deploy/${file}: expected ${listen} and ${server} lines`);
  let first = true;
  return shipped.replace(listen, listenOn).replace(new RegExp(server.source, 'gm'), (line) => {
    if (!first) return '';
    first = false;
    return backends.map((backend) => serverLine(backend, line)).join('\n');
  });
}

const LOOPBACK_ADDRESS = /127\.0\.0\.1:\d+/;

/** A balancer process on a free loopback port in its own temporary directory; stopped by PID. */
abstract class BalancerProcess {
  readonly port: number;
  readonly dir: string;
  readonly #process: ChildProcess;
  #output = '';

  protected constructor(port: number, dir: string, child: ChildProcess) {
    this.port = port;
    this.dir = dir;
    this.#process = child;
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (this.#output += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.#output += chunk));
  }

  protected async listening(): Promise<void> {
    try {
      await until(`${this.#process.spawnfile} listens`, () => this.exitedEarly() || this.accepts(), { timeoutMs: 5_000, intervalMs: 50 });
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  private exitedEarly(): false {
    if (this.#process.exitCode !== null) throw new Error(`${this.#process.spawnfile} exited with ${this.#process.exitCode}:\n${this.#output}`);
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

  /** The processes of its group still alive (nginx's workers outlive a master killed alone). */
  get alive(): boolean {
    try {
      process.kill(-(this.#process.pid as number), 0);
      return true;
    } catch {
      return false;
    }
  }

  /** Kills its whole process group (started `detached`), so no worker is left holding the port. */
  async stop(): Promise<void> {
    const child = this.#process;
    const exited = child.exitCode === null && child.signalCode === null ? new Promise<void>((resolve) => child.once('exit', () => resolve())) : undefined;
    try {
      process.kill(-(child.pid as number), 'SIGKILL');
    } catch {
      // The group is gone already.
    }
    await exited;
    await until('the balancer process group is gone', () => !this.alive, { timeoutMs: 5_000, intervalMs: 20 });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A real `haproxy -db` running deploy/haproxy.cfg, plus an admin socket to read its server states. */
export class Haproxy extends BalancerProcess {
  readonly #socket: string;

  private constructor(port: number, dir: string, child: ChildProcess, socket: string) {
    super(port, dir, child);
    this.#socket = socket;
  }

  static async start(backends: readonly Backend[]): Promise<Haproxy> {
    const [port] = (await freePorts(1)) as [number];
    const dir = mkdtempSync(path.join(tmpdir(), 'authsocket-haproxy-'));
    const config = path.join(dir, 'haproxy.cfg');
    writeFileSync(
      config,
      shippedConfig(
        'haproxy.cfg',
        /^ {2}bind :\d+$/m,
        `  bind 127.0.0.1:${port}`,
        /^ {2}server \S+ 127\.0\.0\.1:\d+ .*$/m,
        (b, line) => line.replace(/server \S+ \S+/, `server ${b.name} ${b.host}:${b.port}`),
        backends,
      ),
    );
    // A second file adds the admin socket; HAProxy merges the `global` sections.
    const socket = path.join(dir, 'admin.sock');
    const admin = path.join(dir, 'admin.cfg');
    writeFileSync(admin, `global\n  stats socket ${socket} mode 600 level admin\n`);
    const proxy = new Haproxy(port, dir, spawn('haproxy', ['-f', config, '-f', admin, '-db'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true }), socket);
    await proxy.listening();
    return proxy;
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
}

/** A real `nginx` in the foreground running deploy/nginx.conf, its prefix a temporary directory. */
export class Nginx extends BalancerProcess {
  static async start(backends: readonly Backend[]): Promise<Nginx> {
    const [port] = (await freePorts(1)) as [number];
    const dir = mkdtempSync(path.join(tmpdir(), 'authsocket-nginx-'));
    mkdirSync(path.join(dir, 'tmp'));
    const config = path.join(dir, 'nginx.conf');
    writeFileSync(
      config,
      shippedConfig(
        'nginx.conf',
        /^ {4}listen \d+;$/m,
        `    listen 127.0.0.1:${port};`,
        /^ {4}server 127\.0\.0\.1:\d+ .*;$/m,
        (b, line) => line.replace(LOOPBACK_ADDRESS, `${b.host}:${b.port}`),
        backends,
      ),
    );
    // -e: nginx opens its default error log before it reads the config's `error_log stderr`.
    const proxy = new Nginx(port, dir, spawn('nginx', ['-p', dir, '-c', config, '-e', 'stderr'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true }));
    await proxy.listening();
    return proxy;
  }
}
