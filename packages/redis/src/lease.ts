import { randomBytes } from 'node:crypto';
import type { Logger } from '@authsocket/server';
import { attempt, type Client, isDown } from './errors.js';
import type { Keys } from './keys.js';
import { ACQUIRE, DEAD, LIVE, RENEW, RETIRE } from './lease-scripts.js';

/** What a store that writes under this node's lease does when the lease changes or another dies. */
export interface LeaseHolder {
  /** Writes everything this node holds again, under the (new) current lease. */
  rewrite(): void;
  /** Deletes what the dead lease `lease` left in this store. */
  sweep(lease: string): Promise<void>;
}

export interface LeaseOptions {
  /** How long a lease lasts without renewal, in ms: the bound on a dead node's entries being listed. */
  readonly leaseMs: number;
  readonly logger: Logger;
}

/** Dead leases one sweep cleans up at most; the rest wait for the next sweep. */
const SWEEP_BATCH = 16;

/**
 * This node's sign of life in Redis, shared by the connection registry and the presence store: a
 * member `<node>@<random>` of one sorted set whose score is its deadline (Redis's clock), renewed
 * every third of `leaseMs`. Entries are written under the lease id; readers keep only those of a
 * live lease, so a node killed -9 has its entries gone from every read within `leaseMs`, and live
 * nodes sweep (delete) what dead leases left. After a lapse (an outage longer than the lease) or a
 * failed write, the node takes a new lease, has every holder rewrite what it holds under it, and
 * retires the old one: what it wrote or deleted meanwhile is then right again.
 */
export class NodeLease {
  readonly leaseMs: number;
  readonly #redis: Client;
  readonly #key: string;
  readonly #logger: Logger;
  readonly #holders = new Set<LeaseHolder>();
  #node: string | undefined;
  #id: string | undefined;
  /** Settled once the first lease is taken. */
  #acquired: { promise: Promise<void>; resolve: () => void } | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #ticks = 0;
  /** A write failed since the last rewrite: the next successful renewal rewrites. */
  #dirty = false;
  /** A failure was logged at warn since the last success: later ones go to debug. */
  #warned = false;
  #busy = false;
  #closed = false;

  constructor(redis: Client, keys: Keys, { leaseMs, logger }: LeaseOptions) {
    this.#redis = redis;
    this.#key = keys.leases;
    this.leaseMs = leaseMs;
    this.#logger = logger;
  }

  /** The current lease id, once taken: what entries are written under. */
  get id(): string | undefined {
    return this.#id;
  }

  /** Resolves once this node holds a lease (rejects if `start` was never called). */
  get ready(): Promise<void> {
    return this.#acquired?.promise ?? Promise.reject(new Error('the Redis registry was not started: call start(node, held) first'));
  }

  /**
   * Takes this node's lease (once, whichever holder starts first; retried every tick while Redis
   * does not answer) and retires any lease an earlier process with the same node id left. Resolves
   * once `holder` has written what it holds under it.
   */
  start(node: string, holder: LeaseHolder): Promise<void> {
    if (this.#node !== undefined && this.#node !== node) {
      return Promise.reject(new Error(`the Redis registry already runs for node '${this.#node}', not '${node}'`));
    }
    this.#node = node;
    const first = this.#holders.size === 0;
    this.#holders.add(holder);
    if (this.#acquired === undefined) {
      let resolve = () => {};
      const promise = new Promise<void>((settle) => (resolve = settle));
      this.#acquired = { promise, resolve };
      this.#timer = setInterval(() => void this.#tick(), Math.max(10, Math.floor(this.leaseMs / 3)));
      this.#timer.unref();
      void this.#tick();
    }
    // The first holder is written by the taking of the lease itself; a later one writes now.
    return this.#acquired.promise.then(() => (first ? undefined : holder.rewrite()));
  }

  /** The ids of every live lease (this node's included). Throws `StoreUnavailableError`. */
  async live(): Promise<ReadonlySet<string>> {
    const ids = (await attempt(this.#redis, () => LIVE.run(this.#redis, [this.#key], []))) as string[];
    return new Set(ids);
  }

  /** Whether a write may be sent now: false (and a rewrite due) when there is no lease or Redis is down. */
  writable(): boolean {
    if (this.#id !== undefined && !isDown(this.#redis)) return true;
    this.#dirty = true;
    return false;
  }

  /** A fire-and-forget write failed: logged without flooding, repaired by the next rewrite. */
  readonly failed = (error: unknown): void => {
    this.#dirty = true;
    this.#log('redis registry write failed: rewriting once Redis answers', error);
  };

  /** The node of a lease id. */
  static nodeOf(lease: string): string {
    return lease.slice(0, lease.lastIndexOf('@'));
  }

  /** Stops renewing and marks the lease dead, so what is left of this node is no longer listed. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    const id = this.#id;
    this.#id = undefined;
    if (id !== undefined && this.#redis.status === 'ready') await this.#redis.zadd(this.#key, 0, id).catch(() => {});
  }

  async #take(): Promise<void> {
    const node = this.#node as string;
    const id = `${node}@${randomBytes(9).toString('base64url')}`;
    await attempt(this.#redis, () => ACQUIRE.run(this.#redis, [this.#key], [id, this.leaseMs]));
    this.#id = id;
    this.#dirty = false;
    for (const holder of this.#holders) holder.rewrite();
    // After the rewrite, sent on the same connection: the old lease's entries stay listed until the new ones are in.
    await attempt(this.#redis, () => RETIRE.run(this.#redis, [this.#key], [`${node}@`, id]));
    this.#acquired?.resolve();
  }

  async #tick(): Promise<void> {
    if (this.#busy || this.#closed) return;
    this.#busy = true;
    try {
      const id = this.#id;
      const renewed = id === undefined ? 0 : await attempt(this.#redis, () => RENEW.run(this.#redis, [this.#key], [id, this.leaseMs]));
      if (this.#closed) return;
      if (id === undefined) {
        await this.#take();
      } else if (renewed === 0) {
        this.#logger.warn({ node: this.#node, leaseMs: this.leaseMs }, 'redis registry lease lapsed: rewriting this node\'s entries');
        await this.#take();
      } else if (this.#dirty) {
        this.#logger.info({ node: this.#node }, 'redis registry writes were lost: rewriting this node\'s entries');
        await this.#take();
      }
      this.#warned = false;
      // Sweeps once a lease period, spread by the tick count (every node sweeps; deleting twice is harmless).
      if (++this.#ticks % 3 === 0) await this.#sweep();
    } catch (error) {
      this.#log('redis registry lease not renewed', error);
    } finally {
      this.#busy = false;
    }
  }

  async #sweep(): Promise<void> {
    const dead = (await attempt(this.#redis, () => DEAD.run(this.#redis, [this.#key], [SWEEP_BATCH]))) as string[];
    for (const lease of dead) {
      await Promise.all([...this.#holders].map((holder) => holder.sweep(lease)));
      await attempt(this.#redis, () => this.#redis.zrem(this.#key, lease));
    }
    if (dead.length > 0) this.#logger.debug({ node: this.#node, leases: dead.length }, 'redis registry swept dead leases');
  }

  #log(message: string, error: unknown): void {
    const log = this.#warned ? this.#logger.debug : this.#logger.warn;
    this.#warned = true;
    log.call(this.#logger, { node: this.#node, err: error instanceof Error ? error.message : String(error) }, message);
  }
}
