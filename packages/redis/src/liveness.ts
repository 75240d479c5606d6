import type { Redis } from 'ioredis';

export interface LivenessOptions {
  /** PING period, in ms. */
  readonly intervalMs: number;
  /** Past this without a PONG (or stuck connecting after TCP connected), the connection counts as down, in ms. */
  readonly timeoutMs: number;
}

export interface LivenessHooks {
  /**
   * `redis` did not answer in time: it was dropped (ioredis reconnects it). `again` when no PING
   * was answered since the last one, so a long outage is logged once, not every few seconds.
   */
  dead(redis: Redis, reason: string, again: boolean): void;
  /** Every watched connection answered a PING again after one was dead. */
  alive?(): void;
}

interface Probe {
  /** When the PING in flight was sent, or when the connection was first seen half-open. */
  since: number;
  kind: 'ping' | 'handshake';
}

/**
 * A PING every `intervalMs` on every watched connection. TCP alone notices a frozen server or a
 * black-holed link only after minutes of retransmits; a PING without a reply in `timeoutMs` does
 * it in seconds. The dead connection's socket is destroyed (not ended: a FIN into a black hole
 * waits too), so ioredis reconnects at once. A connection whose TCP connected but whose handshake
 * (AUTH, ready check) hangs is dropped the same way.
 */
export class Liveness {
  readonly #targets: () => readonly Redis[];
  readonly #options: LivenessOptions;
  readonly #hooks: LivenessHooks;
  readonly #probes = new Map<Redis, Probe>();
  readonly #timer: ReturnType<typeof setInterval>;
  #dead = false;

  constructor(targets: () => readonly Redis[], options: LivenessOptions, hooks: LivenessHooks) {
    this.#targets = targets;
    this.#options = options;
    this.#hooks = hooks;
    // Checked more often than PINGs are sent, so a missing PONG is seen close to timeoutMs.
    const tick = Math.max(10, Math.min(options.intervalMs, Math.ceil(options.timeoutMs / 4)));
    let sinceSent = options.intervalMs;
    this.#timer = setInterval(() => {
      sinceSent += tick;
      const send = sinceSent >= options.intervalMs;
      if (send) sinceSent = 0;
      this.#check(send);
    }, tick);
    this.#timer.unref();
  }

  /** True while a watched connection missed its PING and has not answered one since. */
  get dead(): boolean {
    return this.#dead;
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#probes.clear();
  }

  #check(send: boolean): void {
    const now = Date.now();
    const targets = this.#targets();
    for (const redis of this.#probes.keys()) if (!targets.includes(redis)) this.#probes.delete(redis);
    for (const redis of targets) {
      const probe = this.#probes.get(redis);
      // 'wait': a Cluster node not connected yet (ioredis connects them lazily): the PING connects it.
      if (redis.status !== 'ready' && redis.status !== 'connect' && redis.status !== 'wait') {
        // Known down already: ioredis is reconnecting it.
        this.#probes.delete(redis);
        continue;
      }
      if (probe && now - probe.since > this.#options.timeoutMs) {
        this.#probes.delete(redis);
        this.#kill(redis, probe.kind === 'ping' ? `no PONG within ${this.#options.timeoutMs} ms` : 'handshake hung');
        continue;
      }
      if (redis.status === 'connect') {
        // TCP is up, the handshake (AUTH, ready check) is not done: it gets timeoutMs too.
        if (probe?.kind !== 'handshake') this.#probes.set(redis, { since: now, kind: 'handshake' });
        continue;
      }
      if (probe?.kind === 'handshake') this.#probes.delete(redis);
      if (redis.status === 'wait' && probe) continue;
      // While one is dead, PING every tick: recovery is seen as soon as it answers.
      if ((send || this.#dead) && !this.#probes.has(redis)) this.#ping(redis, now);
    }
  }

  #ping(redis: Redis, now: number): void {
    const sent: Probe = { since: now, kind: 'ping' };
    this.#probes.set(redis, sent);
    redis.ping().then(
      () => {
        if (this.#probes.get(redis) !== sent) return;
        this.#probes.delete(redis);
        if (!this.#dead || this.#probes.size > 0) return;
        if (!this.#targets().every((target) => target.status === 'ready')) return;
        this.#dead = false;
        this.#hooks.alive?.();
      },
      // A failed PING (connection closed, command timeout) waits for its deadline like a lost one.
      () => {},
    );
  }

  #kill(redis: Redis, reason: string): void {
    const again = this.#dead;
    this.#dead = true;
    // Destroy, not disconnect(): ioredis then reconnects by its retry strategy, at once.
    redis.stream?.destroy();
    this.#hooks.dead(redis, reason, again);
  }
}
