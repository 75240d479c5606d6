import { randomBytes } from 'node:crypto';
import type { Logger } from '@authsocket/server';
import { attempt, type Client, isDown, unavailable } from './errors.js';
import type { Keys } from './keys.js';
import { ACQUIRE, CLAIM, EXTEND_CLAIM, FINISH_SWEEP, LIVE, NODE_LEASES, RENEW, RETIRE } from './lease-scripts.js';

/** What a store that writes under this node's lease does when the lease changes or another dies. */
export interface LeaseHolder {
  /** Writes everything this node holds again, under the (new) current lease. */
  rewrite(): void;
  /**
   * Deletes what the dead lease `lease` left in this store, in batches of about `SWEEP_BATCH`
   * entries, removing each batch's index fields once done (so a sweep cut short keeps its progress);
   * awaits `progress()` after each batch, which throws once this node no longer holds the claim.
   */
  sweep(lease: string, progress: () => Promise<void>): Promise<void>;
}

export interface LeaseOptions {
  /** How long a lease lasts without renewal, in ms: the bound on a dead node's entries being listed. */
  readonly leaseMs: number;
  readonly logger: Logger;
}

/** Entries a holder sweeps per batch (HSCAN COUNT, then one script per entry). */
export const SWEEP_BATCH = 500;
/** HSCAN rounds one holder's sweep of one lease takes at most (5 million entries); past it the claim lapses and another resumes. */
const SWEEP_ROUNDS = 10_000;

/**
 * Sweeps the index hash `index` of a dead lease in HSCAN batches: `remove` deletes the entries of
 * one batch (field, value pairs), then their index fields go, so the progress is kept. The hash is
 * never deleted whole: a field re-created meanwhile by a write still in flight waits for the last sweep.
 */
export async function sweepIndex(
  redis: Client,
  index: string,
  progress: () => Promise<void>,
  remove: (entries: Array<[string, string]>) => Array<Promise<unknown>>,
): Promise<void> {
  let cursor = '0';
  for (let round = 0; round < SWEEP_ROUNDS; round++) {
    const [next, flat] = await attempt(redis, () => redis.hscan(index, cursor, 'COUNT', SWEEP_BATCH));
    const entries: Array<[string, string]> = [];
    for (let i = 0; i + 1 < flat.length; i += 2) entries.push([flat[i] as string, flat[i + 1] as string]);
    if (entries.length > 0) {
      await attempt(redis, () => Promise.all(remove(entries)));
      await attempt(redis, () => redis.hdel(index, ...entries.map(([field]) => field)));
    }
    await progress();
    if (next === '0') return;
    cursor = next;
  }
  throw new Error(`the sweep of ${index} took more than ${SWEEP_ROUNDS} rounds`);
}

/** Dead leases one sweep claims at most; the rest wait for the next sweep. */
const SWEEP_LEASES = 16;

/**
 * This node's sign of life in Redis, shared by the connection registry and the presence store: a
 * member `<node>@<random>` of one sorted set whose score is its deadline (Redis's clock), renewed
 * every third of `leaseMs`. Entries are written under the lease id; readers keep only those of a
 * live lease, so a node killed -9 has its entries gone from every read within `leaseMs`. Once a
 * lease period, a live node claims dead leases (one script, so one sweeper per lease; a claim
 * lapses after `leaseMs` without progress) and sweeps them in batches, apart from the renewal,
 * which never waits for a sweep. A swept lease stays a tombstone for two lease periods and is swept
 * once more (writes still in flight may have re-created entries), then removed. After a lapse or a
 * failed write, the node takes a new lease, has every holder rewrite what it holds under it, and
 * retires the leases it held before: what it wrote or deleted meanwhile is then right again.
 */
export class NodeLease {
  readonly leaseMs: number;
  readonly #redis: Client;
  readonly #key: string;
  readonly #logger: Logger;
  readonly #holders = new Set<LeaseHolder>();
  #node: string | undefined;
  #id: string | undefined;
  /** Lease ids this process took and has not retired yet (the current one aside): only these it retires. */
  readonly #retiring = new Set<string>();
  /** Another live lease of this node id, as first seen (id → deadline): renewed later means a second live process. */
  readonly #twins = new Map<string, number>();
  #twinLogged = false;
  /** Settled once the first lease is taken. */
  #acquired: { promise: Promise<void>; resolve: () => void } | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #ticks = 0;
  /** A write failed since the last rewrite: the next successful renewal rewrites. */
  #dirty = false;
  /** A failure was logged at warn since the last success: later ones go to debug. */
  #warned = false;
  #renewing = false;
  #sweeping = false;
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
   * does not answer). Resolves once `holder` has written what it holds under it.
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

  /**
   * The ids of every live lease (this node's included). Throws `StoreUnavailableError`, also when
   * this node's own lease is missing (Redis lost its data, or the lease lapsed): its entries would
   * be missing from the answer, so the node takes a new lease and rewrites them at once.
   */
  async live(): Promise<ReadonlySet<string>> {
    const own = this.#id;
    const ids = new Set((await attempt(this.#redis, () => LIVE.run(this.#redis, [this.#key], []))) as string[]);
    if (own !== undefined && own === this.#id && !ids.has(own)) {
      if (!this.#dirty) {
        this.#dirty = true;
        void this.#tick();
      }
      throw unavailable(new Error("this node's registry lease is missing from Redis: rewriting its entries"));
    }
    return ids;
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

  /** A write went out under a lease that was replaced meanwhile: the next tick rewrites under the current one. */
  stale(): void {
    this.#dirty = true;
  }

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
    if (id !== undefined) this.#retiring.add(id);
    if (this.#redis.status === 'ready') await this.#retire().catch(() => {});
  }

  async #take(): Promise<void> {
    const node = this.#node as string;
    const id = `${node}@${randomBytes(9).toString('base64url')}`;
    // Remembered before it is sent: an ACQUIRE whose reply is lost may still have taken it.
    this.#retiring.add(id);
    this.#dirty = true;
    await attempt(this.#redis, () => ACQUIRE.run(this.#redis, [this.#key], [id, this.leaseMs]));
    // Closed while ACQUIRE was in flight: the fresh lease must not outlive the close.
    if (this.#closed) return void (await this.#retire().catch(() => {}));
    const previous = this.#id;
    if (previous !== undefined) this.#retiring.add(previous);
    this.#retiring.delete(id);
    this.#id = id;
    this.#dirty = false;
    for (const holder of this.#holders) holder.rewrite();
    this.#acquired?.resolve();
    // After the rewrite, sent on the same connection: the old lease's entries stay listed until the
    // new ones are in. Best effort: a failure is retried every tick, and an unretired lease lapses anyway.
    await this.#retire().catch((error: unknown) => this.#log('redis registry: retiring an old lease failed (retried)', error));
  }

  /** Retires the leases this process held before (never another process's, even of the same node id). */
  async #retire(): Promise<void> {
    if (this.#retiring.size === 0) return;
    const ids = [...this.#retiring];
    await attempt(this.#redis, () => RETIRE.run(this.#redis, [this.#key], [this.#id ?? '', ...ids]));
    for (const id of ids) this.#retiring.delete(id);
  }

  async #tick(): Promise<void> {
    if (this.#renewing || this.#closed) return;
    this.#renewing = true;
    try {
      const id = this.#id;
      const renewed = id === undefined ? 0 : await attempt(this.#redis, () => RENEW.run(this.#redis, [this.#key], [id, this.leaseMs]));
      if (this.#closed) return;
      if (id === undefined) {
        await this.#take();
      } else if (renewed === 0) {
        this.#logger.warn({ node: this.#node, leaseMs: this.leaseMs }, "redis registry lease lapsed: rewriting this node's entries");
        await this.#take();
      } else if (this.#dirty) {
        this.#logger.info({ node: this.#node }, "redis registry writes were lost: rewriting this node's entries");
        await this.#take();
      } else {
        await this.#retire();
      }
      this.#warned = false;
      // Once a lease period, spread by the tick count; never awaited, so renewal never waits for a sweep.
      if (++this.#ticks % 3 === 0) {
        await this.#checkTwins().catch((error: unknown) => this.#log('redis registry: checking for a second process of this node id failed', error));
        if (!this.#sweeping) void this.#sweep();
      }
    } catch (error) {
      this.#log('redis registry lease not renewed', error);
    } finally {
      this.#renewing = false;
    }
  }

  /** Logs (once) another process renewing a lease of this node id: node ids must be unique, and the two do not fight. */
  async #checkTwins(): Promise<void> {
    if (this.#twinLogged) return;
    const node = this.#node as string;
    const found = (await attempt(this.#redis, () => NODE_LEASES.run(this.#redis, [this.#key], [`${node}@`]))) as string[];
    const seen = new Set<string>();
    for (let i = 0; i + 1 < found.length; i += 2) {
      const lease = found[i] as string;
      const deadline = Number(found[i + 1]);
      if (lease === this.#id || this.#retiring.has(lease)) continue;
      seen.add(lease);
      const first = this.#twins.get(lease);
      if (first === undefined) this.#twins.set(lease, deadline);
      else if (deadline > first) {
        this.#twinLogged = true;
        this.#logger.error(
          { node, lease },
          'redis registry: another live process renews a lease of this node id: node ids must be unique (set nodeId / --node-id per process)',
        );
      }
    }
    for (const lease of this.#twins.keys()) if (!seen.has(lease)) this.#twins.delete(lease);
  }

  /** Claims dead leases (one sweeper per lease) and sweeps each; a failure leaves the claim to lapse and be taken over. */
  async #sweep(): Promise<void> {
    this.#sweeping = true;
    try {
      const claimed = (await attempt(this.#redis, () => CLAIM.run(this.#redis, [this.#key], [SWEEP_LEASES, this.leaseMs]))) as Array<
        string | number
      >;
      for (let i = 0; i + 1 < claimed.length && !this.#closed; i += 2) {
        const lease = String(claimed[i]);
        const phase = Number(claimed[i + 1]);
        const progress = async () => {
          const extended = await attempt(this.#redis, () => EXTEND_CLAIM.run(this.#redis, [this.#key], [lease, phase, this.leaseMs]));
          if (extended !== 1) throw new Error(`the sweep claim on lease ${lease} was lost`);
        };
        for (const holder of this.#holders) await holder.sweep(lease, progress);
        await attempt(this.#redis, () => FINISH_SWEEP.run(this.#redis, [this.#key], [lease, phase, 2 * this.leaseMs]));
        this.#logger.debug({ node: this.#node, lease, phase }, 'redis registry swept a dead lease');
      }
    } catch (error) {
      this.#log('redis registry sweep stopped (resumed once the claim lapses)', error);
    } finally {
      this.#sweeping = false;
    }
  }

  #log(message: string, error: unknown): void {
    const log = this.#warned ? this.#logger.debug : this.#logger.warn;
    this.#warned = true;
    log.call(this.#logger, { node: this.#node, err: error instanceof Error ? error.message : String(error) }, message);
  }
}
