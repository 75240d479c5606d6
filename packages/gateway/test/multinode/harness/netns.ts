import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

const exec = async (command: string, ...args: string[]): Promise<string> => (await run(command, args, { timeout: 5_000 })).stdout;

let created = 0;

/** Deletes namespaces left by a test process that died before its cleanup (deleting one removes its veth pair). */
async function deleteOrphans(): Promise<void> {
  for (const line of (await exec('ip', 'netns', 'list')).split('\n')) {
    const match = /^asx-(\d+)-\d+/.exec(line);
    if (!match || alive(Number(match[1]))) continue;
    await exec('ip', 'netns', 'del', line.split(' ')[0]!).catch(() => '');
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A network namespace joined to this one by a veth pair (host side `hostAddress`, namespace side
 * `address`, a /30 of 10.231.0.0/16), where `nft` drop rules make a true black hole: packets to a
 * host port vanish, no RST, no ICMP, sockets stay open on both ends. Needs root (`ip netns`); the kernel
 * here has no `sch_netem`, so there is no latency, only drop. `delete()` removes the namespace and both veth ends.
 */
export class NetNamespace {
  readonly name: string;
  readonly address: string;
  readonly hostAddress: string;
  readonly #hostLink: string;

  private constructor(name: string, hostLink: string, subnet: number) {
    this.name = name;
    this.#hostLink = hostLink;
    this.hostAddress = `10.231.${subnet}.1`;
    this.address = `10.231.${subnet}.2`;
  }

  static async create(): Promise<NetNamespace> {
    await deleteOrphans();
    // Unique per process and per call; veth names within 15 characters.
    const count = created++;
    const id = `${process.pid % 100_000}${count}`;
    const subnet = (process.pid + count * 7) % 250;
    const namespace = new NetNamespace(`asx-${process.pid}-${count}`, `asxh${id}`, subnet);
    const inside = `asxn${id}`;
    try {
      await exec('ip', 'netns', 'add', namespace.name);
      await exec('ip', 'link', 'add', namespace.#hostLink, 'type', 'veth', 'peer', 'name', inside);
      await exec('ip', 'link', 'set', inside, 'netns', namespace.name);
      await exec('ip', 'addr', 'add', `${namespace.hostAddress}/30`, 'dev', namespace.#hostLink);
      await exec('ip', 'link', 'set', namespace.#hostLink, 'up');
      await namespace.exec('ip', 'addr', 'add', `${namespace.address}/30`, 'dev', inside);
      await namespace.exec('ip', 'link', 'set', inside, 'up');
      await namespace.exec('ip', 'link', 'set', 'lo', 'up');
    } catch (error) {
      await namespace.delete();
      throw error;
    }
    return namespace;
  }

  /** The prefix that runs a command inside the namespace. */
  get prefix(): string[] {
    return ['ip', 'netns', 'exec', this.name];
  }

  exec(command: string, ...args: string[]): Promise<string> {
    return exec('ip', 'netns', 'exec', this.name, command, ...args);
  }

  /** Drops, inside the namespace, every packet to and from `hostAddress:port`. */
  async blackhole(port: number): Promise<void> {
    const table = 'asx_blackhole';
    await this.exec('nft', 'add', 'table', 'inet', table);
    await this.exec('nft', `add chain inet ${table} out { type filter hook output priority 0 ; policy accept ; }`);
    await this.exec('nft', `add rule inet ${table} out ip daddr ${this.hostAddress} tcp dport ${port} drop`);
    await this.exec('nft', `add chain inet ${table} in { type filter hook input priority 0 ; policy accept ; }`);
    await this.exec('nft', `add rule inet ${table} in ip saddr ${this.hostAddress} tcp sport ${port} drop`);
  }

  /** Removes the drop rules. */
  async heal(): Promise<void> {
    await this.exec('nft', 'delete', 'table', 'inet', 'asx_blackhole').catch(() => '');
  }

  async delete(): Promise<void> {
    await exec('ip', 'netns', 'del', this.name).catch(() => '');
    await exec('ip', 'link', 'del', this.#hostLink).catch(() => '');
  }
}
