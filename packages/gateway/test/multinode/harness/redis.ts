import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
// Test-only import across packages: the redis package's real redis-server helper (node built-ins only).
import { freePorts, RedisServer } from '../../../../redis/test/redis-server.js';
import { until } from './cleanup.js';

export { freePorts, RedisServer };

const run = promisify(execFile);

/** `redis-cli -p <port> ...args`, its trimmed output. */
export async function redisCli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 5_000 });
  return stdout.trim();
}

/**
 * A 3-master Redis Cluster of real redis-server processes (no replicas), formed with
 * `redis-cli --cluster create`; ready once every node reports `cluster_state:ok`.
 */
export class RedisCluster {
  readonly nodes: readonly RedisServer[];

  private constructor(nodes: readonly RedisServer[]) {
    this.nodes = nodes;
  }

  static async start(masters = 3): Promise<RedisCluster> {
    const args = ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '500'];
    const nodes = await Promise.all(Array.from({ length: masters }, () => RedisServer.start(args)));
    const cluster = new RedisCluster(nodes);
    try {
      await run('redis-cli', ['--cluster', 'create', ...cluster.seeds, '--cluster-yes'], { timeout: 20_000 });
      for (const node of nodes) {
        await until(`cluster node ${node.port} ok`, async () => (await redisCli(node.port, 'cluster', 'info')).includes('cluster_state:ok'), {
          timeoutMs: 10_000,
          intervalMs: 100,
        });
      }
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** `host:port` of every master, for `--redis-cluster-nodes`. */
  get seeds(): string[] {
    return this.nodes.map((node) => `127.0.0.1:${node.port}`);
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.stop()));
  }
}

/** One `redis-sentinel` process with its own config file (Sentinel rewrites it) in a fresh directory. */
class Sentinel {
  readonly port: number;
  readonly dir: string;
  readonly #process: ChildProcess;

  private constructor(port: number, dir: string, child: ChildProcess) {
    this.port = port;
    this.dir = dir;
    this.#process = child;
  }

  static async start(port: number, name: string, masterPort: number): Promise<Sentinel> {
    const dir = mkdtempSync(path.join(tmpdir(), 'authsocket-sentinel-'));
    const config = path.join(dir, 'sentinel.conf');
    writeFileSync(
      config,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${masterPort} 2`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 5000`,
        `sentinel parallel-syncs ${name} 1`,
        '',
      ].join('\n'),
    );
    const child = spawn('redis-sentinel', [config], { detached: true, stdio: 'ignore' });
    const sentinel = new Sentinel(port, dir, child);
    await until(`sentinel ${port} answers`, async () => (await redisCli(port, 'ping')) === 'PONG', { timeoutMs: 5_000, intervalMs: 100 });
    return sentinel;
  }

  async stop(): Promise<void> {
    const child = this.#process;
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      process.kill(-child.pid, 'SIGKILL');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A Sentinel set: one master, one replica and three sentinels (quorum 2) watching `name`; ready once
 * the sentinels know the replica and each other, so that a master kill fails over.
 */
export class SentinelSet {
  readonly name: string;
  readonly master: RedisServer;
  readonly replica: RedisServer;
  readonly sentinels: readonly Sentinel[];

  private constructor(name: string, master: RedisServer, replica: RedisServer, sentinels: readonly Sentinel[]) {
    this.name = name;
    this.master = master;
    this.replica = replica;
    this.sentinels = sentinels;
  }

  static async start(name = 'mymaster'): Promise<SentinelSet> {
    const master = await RedisServer.start();
    const replica = await RedisServer.start(['--replicaof', '127.0.0.1', String(master.port)]);
    const ports = await freePorts(3);
    const sentinels = await Promise.all(ports.map((port) => Sentinel.start(port, name, master.port)));
    const set = new SentinelSet(name, master, replica, sentinels);
    try {
      for (const sentinel of sentinels) {
        await until(
          `sentinel ${sentinel.port} sees the replica and 2 other sentinels`,
          async () => {
            const info = await redisCli(sentinel.port, 'sentinel', 'master', name);
            const field = (key: string) => Number(info.split('\n')[info.split('\n').indexOf(key) + 1]);
            return field('num-slaves') === 1 && field('num-other-sentinels') === 2;
          },
          { timeoutMs: 15_000, intervalMs: 200 },
        );
      }
    } catch (error) {
      await set.stop();
      throw error;
    }
    return set;
  }

  /** `host:port` of every sentinel, for `--redis-sentinels`. */
  get seeds(): string[] {
    return this.sentinels.map((sentinel) => `127.0.0.1:${sentinel.port}`);
  }

  /** Resolves once the replica has every write the master took so far (replication is asynchronous). */
  async replicated(): Promise<void> {
    const offset = (info: string, field: string) => Number(new RegExp(`${field}:(\\d+)`).exec(info)?.[1] ?? -1);
    const target = offset(await redisCli(this.master.port, 'info', 'replication'), 'master_repl_offset');
    await until('replica in sync', async () => offset(await redisCli(this.replica.port, 'info', 'replication'), 'slave_repl_offset') >= target, {
      timeoutMs: 5_000,
      intervalMs: 50,
    });
  }

  /** The master's port as the first sentinel names it now. */
  async masterPort(): Promise<number> {
    const [, port] = (await redisCli(this.sentinels[0]!.port, 'sentinel', 'get-master-addr-by-name', this.name)).split('\n');
    return Number(port);
  }

  async stop(): Promise<void> {
    await Promise.all(this.sentinels.map((sentinel) => sentinel.stop()));
    await Promise.all([this.master.stop(), this.replica.stop()]);
  }
}
