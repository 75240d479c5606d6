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

/** A Redis Cluster of `masters` masters, each with `replicas` replicas, created with `redis-cli --cluster create`. */
export class RedisCluster {
  readonly nodes: readonly RedisServer[];

  private constructor(nodes: readonly RedisServer[]) {
    this.nodes = nodes;
  }

  static async start(masters = 3, replicas = 0): Promise<RedisCluster> {
    const clusterArgs = ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '500'];
    const count = masters * (1 + replicas);
    const nodes = await Promise.all(Array.from({ length: count }, () => RedisServer.start(clusterArgs)));
    const cluster = new RedisCluster(nodes);
    try {
      const addresses = nodes.map((node) => `127.0.0.1:${node.port}`);
      await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', String(replicas), '--cluster-yes'], {
        timeout: 15_000,
      });
      for (const node of nodes) {
        await poll(async () => (await cli(node.port, 'cluster', 'info')).includes('cluster_state:ok'), 10_000, 'cluster_state:ok');
      }
      if (replicas > 0) {
        for (const node of nodes) {
          await poll(
            async () => !/role:slave/.test(await cli(node.port, 'info', 'replication')) ||
              (await cli(node.port, 'info', 'replication')).includes('master_link_status:up'),
            10_000,
            'replicas in sync',
          );
        }
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
    // Asked of the first node that answers: a test may have killed some.
    let answer: [string, string] | undefined;
    for (const node of this.nodes) {
      answer = await Promise.all([cli(node.port, 'cluster', 'keyslot', key), cli(node.port, 'cluster', 'nodes')]).catch(
        () => undefined,
      );
      if (answer) break;
    }
    if (!answer) throw new Error('no cluster node answers');
    const slot = Number(answer[0].trim());
    for (const line of answer[1].trim().split('\n')) {
      const fields = line.split(' ');
      if (!fields[2]?.includes('master') || fields[2].includes('fail')) continue;
      for (const range of fields.slice(8)) {
        const [low, high = low] = range.split('-').map(Number) as [number, number?];
        if (slot >= low && slot <= high) return Number(fields[1]!.split('@')[0]!.split(':')[1]);
      }
    }
    throw new Error(`no master owns slot ${slot}`);
  }

  /** The node listening on `port`. */
  node(port: number): RedisServer {
    const node = this.nodes.find((candidate) => candidate.port === port);
    if (!node) throw new Error(`no cluster node on port ${port}`);
    return node;
  }

  /** The port of a replica of the master on `port`, once it has every write that master acknowledged. */
  async replicaInSync(port: number): Promise<number> {
    const lines = (await cli(port, 'cluster', 'nodes')).trim().split('\n');
    const id = lines.find((line) => line.includes('myself'))!.split(' ')[0]!;
    const replica = lines.find((line) => line.split(' ')[3] === id);
    if (!replica) throw new Error(`master ${port} has no replica`);
    const replicaPort = Number(replica.split(' ')[1]!.split('@')[0]!.split(':')[1]);
    const offset = (info: string, field: string) => Number(new RegExp(`${field}:(\\d+)`).exec(info)?.[1] ?? -1);
    const target = offset(await cli(port, 'info', 'replication'), 'master_repl_offset');
    await poll(
      async () => offset(await cli(replicaPort, 'info', 'replication'), 'slave_repl_offset') >= target,
      5_000,
      'replica in sync',
    );
    return replicaPort;
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
