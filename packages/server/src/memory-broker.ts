import { randomBytes } from 'node:crypto';
import type { StreamPosition } from '@authsocket/protocol';
import type { Audience, Broker, BrokerHandlers, HistoryRead, Publication, PublishOptions } from './broker.js';
import { DEFAULT_HISTORY, DEFAULT_IDEMPOTENCY_WINDOW_MS } from './defaults.js';

export interface MemoryBrokerOptions {
  /** Publications kept per stream. Default 1_000. */
  maxEntries?: number;
  /** Age after which publications are dropped from history, in ms. Default 300_000 (5 minutes). */
  maxAgeMs?: number;
  /** How long an idempotency key is remembered, in ms. Default 86_400_000 (24 h). */
  idempotencyWindowMs?: number;
  /** Idempotency keys remembered at most (oldest forgotten first). Default 100_000. */
  maxIdempotencyKeys?: number;
  now?: () => number;
}

/** One key per audience: the same idempotency key sent to two users is two publications. */
function idempotencyEntry(to: Audience, key: string): string {
  const audience = 'user' in to ? `u:${to.user}` : 'topic' in to ? `t:${to.topic}` : 'connection' in to ? `c:${to.connection}` : '*';
  return `${audience}\n${key}`;
}

interface Stream {
  offset: number;
  /** In offset order, with the append time for age-based trimming. */
  readonly entries: Array<{ readonly publication: Publication; readonly at: number }>;
}

/**
 * The single-node broker: history in this process's memory, no other nodes. All its streams share
 * one epoch, this broker's life: history is lost exactly on restart, which the next epoch reports.
 * Only a publication creates a stream; asking about one (a subscribe, a resume) does not, so a
 * client naming many topics costs nothing. A published stream keeps its offset (a few bytes) for
 * the broker's life, its entries only for `maxAgeMs`.
 */
export class MemoryBroker implements Broker {
  readonly #epoch = randomBytes(6).toString('base64url');
  readonly #streams = new Map<string, Stream>();
  #sweptAt: number;
  readonly #maxEntries: number;
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  /** Idempotency keys seen, with when each is forgotten, in insertion order (so oldest first). */
  readonly #keys = new Map<string, number>();
  readonly #idempotencyWindowMs: number;
  readonly #maxIdempotencyKeys: number;
  #handlers: BrokerHandlers | undefined;

  constructor({
    maxEntries = DEFAULT_HISTORY.maxEntries,
    maxAgeMs = DEFAULT_HISTORY.maxAgeMs,
    idempotencyWindowMs = DEFAULT_IDEMPOTENCY_WINDOW_MS,
    maxIdempotencyKeys = 100_000,
    now = Date.now,
  }: MemoryBrokerOptions = {}) {
    this.#maxEntries = maxEntries;
    this.#maxAgeMs = maxAgeMs;
    this.#idempotencyWindowMs = idempotencyWindowMs;
    this.#maxIdempotencyKeys = maxIdempotencyKeys;
    this.#now = now;
    this.#sweptAt = now();
  }

  async publish(publication: Publication, options?: PublishOptions): Promise<number> {
    if (options?.idempotencyKey !== undefined && this.#seenKey(idempotencyEntry(publication.to, options.idempotencyKey))) {
      return 0;
    }
    return this.#handlers?.publication(this.#append(publication)) ?? 0;
  }

  /** True when `entry` was published within the window; otherwise remembers it. */
  #seenKey(entry: string): boolean {
    const now = this.#now();
    for (const [key, until] of this.#keys) {
      if (until > now && this.#keys.size < this.#maxIdempotencyKeys) break;
      this.#keys.delete(key);
    }
    if ((this.#keys.get(entry) ?? 0) > now) return true;
    this.#keys.set(entry, now + this.#idempotencyWindowMs);
    return false;
  }

  #append(publication: Publication): Publication {
    if (publication.stream === undefined) return publication;
    let state = this.#streams.get(publication.stream);
    if (!state) {
      state = { offset: 0, entries: [] };
      this.#streams.set(publication.stream, state);
    }
    state.offset += 1;
    // Built field by field (a spread costs more) and one clock read for the append, trim and sweep.
    const stored: Publication = {
      to: publication.to,
      data: publication.data,
      stream: publication.stream,
      offset: state.offset,
      epoch: this.#epoch,
    };
    const now = this.#now();
    state.entries.push({ publication: stored, at: now });
    if (state.entries.length > this.#maxEntries) state.entries.shift();
    this.#trim(state, now);
    this.#sweep(now);
    return stored;
  }

  async control(): Promise<void> {}

  async position(stream: string): Promise<StreamPosition> {
    return this.positionNow(stream);
  }

  positionNow(stream: string): StreamPosition {
    return { epoch: this.#epoch, offset: this.#streams.get(stream)?.offset ?? 0 };
  }

  async read(stream: string, after: StreamPosition): Promise<HistoryRead> {
    const state = this.#streams.get(stream) ?? { offset: 0, entries: [] };
    this.#trim(state);
    const position = { epoch: this.#epoch, offset: state.offset };
    if (after.epoch !== this.#epoch || after.offset > state.offset) return { position, recovered: false, publications: [] };
    const first = state.entries[0]?.publication.offset ?? state.offset + 1;
    // The offsets between `after` and the oldest entry are gone: the history no longer reaches back.
    if (after.offset + 1 < first) return { position, recovered: false, publications: [] };
    const publications = state.entries
      .filter((entry) => (entry.publication.offset as number) > after.offset)
      .map((entry) => entry.publication);
    return { position, recovered: true, publications };
  }

  /** One node only: the handlers are this process's gateway. */
  async start(handlers: BrokerHandlers): Promise<void> {
    this.#handlers = handlers;
  }

  async close(): Promise<void> {
    this.#handlers = undefined;
  }

  #trim(state: Stream, now = this.#now()): void {
    const oldest = now - this.#maxAgeMs;
    while (state.entries.length > 0 && (state.entries[0] as { at: number }).at < oldest) state.entries.shift();
  }

  /** Once per `maxAgeMs`, frees the aged entries of streams nobody has touched since. */
  #sweep(now: number): void {
    if (now - this.#sweptAt < this.#maxAgeMs) return;
    this.#sweptAt = now;
    for (const state of this.#streams.values()) this.#trim(state, now);
  }
}
