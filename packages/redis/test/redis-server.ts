import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

// A real redis-server for tests, with node built-ins only: the gateway's multi-node test imports
// this file by relative path (a test-only import; no package depends on another's tests).

/** `count` distinct ports nothing listens on right now (never 6379, never `--port 0`). */
export async function freePorts(count: number): Promise<number[]> {
  // Held open together, so the OS cannot hand out the same port twice.
  const servers = Array.from({ length: count }, () => net.createServer());
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))));
  const ports = servers.map((server) => (server.address() as net.AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  return ports;
}

async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}

/** Kills a process started with `detached: true` (its whole group) and waits for it to exit. */
async function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
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
  readonly #config: ((dir: string) => string) | undefined;
  #process: ChildProcess | undefined;

  private constructor(port: number, args: readonly string[], config?: (dir: string) => string) {
    this.port = port;
    this.#args = args;
    this.#config = config;
    this.dir = mkdtempSync(path.join(tmpdir(), 'authsocket-redis-'));
  }

  /** `extraArgs` go after the defaults, e.g. `['--user', 'app', 'on', '>secret', ...]`. */
  static async start(extraArgs: readonly string[] = [], port?: number): Promise<RedisServer> {
    const server = new RedisServer(port ?? (await freePort()), extraArgs);
    await server.restart();
    return server;
  }

  /**
   * A Sentinel (`redis-server <file> --sentinel`) whose config file `config(dir)` returns: Sentinel
   * rewrites that file, so it lives in the fresh directory.
   */
  static async sentinel(config: (dir: string) => string): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), [], config);
    await server.restart();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts (again) on the same port, with an empty data set. */
  async restart(): Promise<void> {
    if (this.#process) throw new Error('redis-server is already running');
    let args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir];
    let ready = 'Ready to accept connections';
    if (this.#config) {
      const file = path.join(this.dir, 'sentinel.conf');
      writeFileSync(file, this.#config(this.dir));
      args = [file, '--sentinel', '--port', String(this.port), '--bind', '127.0.0.1'];
      ready = 'Sentinel ID is';
    }
    const child = spawn('redis-server', [...args, ...this.#args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.#process = child;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error) =>
        settle(new Error(`cannot run redis-server (${error.message}); install it with scripts/system-deps.sh`));
      const onExit = (code: number | null) => settle(new Error(`redis-server exited with ${code}:\n${output}`));
      const onOutput = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes(ready)) settle();
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
