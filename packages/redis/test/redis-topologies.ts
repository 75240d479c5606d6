import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { RedisServer } from './redis-server.js';

// Real Redis Cluster and Sentinel sets for tests, from real redis-server / redis-cli processes.

const run = promisify(execFile);

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 10_000 });
  return stdout;
}

/** Polls `check` every 50 ms for up to `timeoutMs`; throws naming `what` if it never holds. */
async function poll(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A Redis Cluster of `masters` masters (no replicas), created with `redis-cli --cluster create`. */
export class RedisCluster {
  readonly nodes: readonly RedisServer[];

  private constructor(nodes: readonly RedisServer[]) {
    this.nodes = nodes;
  }

  static async start(masters = 3): Promise<RedisCluster> {
    const clusterArgs = ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '500'];
    const nodes = await Promise.all(Array.from({ length: masters }, () => RedisServer.start(clusterArgs)));
    const cluster = new RedisCluster(nodes);
    try {
      const addresses = nodes.map((node) => `127.0.0.1:${node.port}`);
      await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-yes'], { timeout: 15_000 });
      for (const node of nodes) {
        await poll(async () => (await cli(node.port, 'cluster', 'info')).includes('cluster_state:ok'), 10_000, 'cluster_state:ok');
      }
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** Seed nodes as the engine takes them. */
  get seeds(): string[] {
    return this.nodes.map((node) => `127.0.0.1:${node.port}`);
  }

  /** The port of the master that owns `key`'s slot, from `CLUSTER NODES`. */
  async ownerOf(key: string): Promise<number> {
    const port = this.nodes[0]!.port;
    const slot = Number((await cli(port, 'cluster', 'keyslot', key)).trim());
    for (const line of (await cli(port, 'cluster', 'nodes')).trim().split('\n')) {
      const fields = line.split(' ');
      if (!fields[2]?.includes('master')) continue;
      for (const range of fields.slice(8)) {
        const [low, high = low] = range.split('-').map(Number) as [number, number?];
        if (slot >= low && slot <= high) return Number(fields[1]!.split('@')[0]!.split(':')[1]);
      }
    }
    throw new Error(`no master owns slot ${slot}`);
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.stop()));
  }
}

/** One master, one replica and `count` Sentinels watching them as `name` (quorum 1, 500 ms down-after). */
export class SentinelSet {
  readonly name: string;
  master: RedisServer;
  replica: RedisServer;
  readonly sentinels: readonly RedisServer[];

  private constructor(name: string, master: RedisServer, replica: RedisServer, sentinels: readonly RedisServer[]) {
    this.name = name;
    this.master = master;
    this.replica = replica;
    this.sentinels = sentinels;
  }

  static async start(count = 1, name = 'mymaster'): Promise<SentinelSet> {
    const master = await RedisServer.start();
    const servers: RedisServer[] = [master];
    try {
      const replica = await RedisServer.start(['--replicaof', '127.0.0.1', String(master.port)]);
      servers.push(replica);
      await poll(async () => (await cli(replica.port, 'info', 'replication')).includes('master_link_status:up'), 10_000, 'replica in sync');
      const sentinels: RedisServer[] = [];
      for (let i = 0; i < count; i++) {
        const sentinel = await RedisServer.sentinel(
          (dir) =>
            [
              `dir ${dir}`,
              `sentinel monitor ${name} 127.0.0.1 ${master.port} 1`,
              `sentinel down-after-milliseconds ${name} 500`,
              `sentinel failover-timeout ${name} 5000`,
              `sentinel parallel-syncs ${name} 1`,
              '',
            ].join('\n'),
        );
        sentinels.push(sentinel);
        servers.push(sentinel);
      }
      // Each sentinel has found the replica (from the master's INFO) before any test kills the master.
      for (const sentinel of sentinels) {
        await poll(
          async () => (await cli(sentinel.port, 'sentinel', 'replicas', name)).includes(String(replica.port)),
          15_000,
          'sentinel sees the replica',
        );
      }
      return new SentinelSet(name, master, replica, sentinels);
    } catch (error) {
      await Promise.all(servers.map((server) => server.stop()));
      throw error;
    }
  }

  get addresses(): string[] {
    return this.sentinels.map((sentinel) => `127.0.0.1:${sentinel.port}`);
  }

  /** Waits until the replica has every write the master acknowledged so far. */
  async replicated(): Promise<void> {
    const offset = (info: string) => Number(/master_repl_offset:(\d+)/.exec(info)?.[1] ?? -1);
    const target = offset(await cli(this.master.port, 'info', 'replication'));
    await poll(async () => offset(await cli(this.replica.port, 'info', 'replication')) >= target, 5_000, 'replication');
  }

  /** The master's port as the sentinels report it. */
  async masterPort(): Promise<number> {
    const reply = await cli(this.sentinels[0]!.port, 'sentinel', 'get-master-addr-by-name', this.name);
    return Number(reply.trim().split('\n')[1]);
  }

  async stop(): Promise<void> {
    await Promise.all([this.master, this.replica, ...this.sentinels].map((server) => server.stop()));
  }
}
