import { randomBytes } from 'node:crypto';
import type { StreamPosition } from '@authsocket/protocol';

/** One message in a stream's history. */
export interface HistoryEntry {
  readonly offset: number;
  /** The frame exactly as delivered live, so a replay is byte-identical. */
  readonly payload: Buffer;
}

/** What a stream holds after a position. */
export interface HistoryRead {
  /** The stream's current epoch and last offset. */
  readonly position: StreamPosition;
  /**
   * True when every message after the requested position is in `entries`: same epoch, and the
   * history still reaches back to it. When false, `entries` is empty: no partial, silent replay.
   */
  readonly recovered: boolean;
  readonly entries: readonly HistoryEntry[];
}

/**
 * Ordered, bounded per-stream history with monotonically increasing offsets. An epoch names one
 * continuous life of a stream: when history is lost (restart, flush), the epoch changes, so a
 * client holding an old position learns it cannot be recovered instead of getting a silent gap.
 */
export interface HistoryStore {
  /**
   * Appends a message; `encode` turns its position into the frame to store and deliver.
   * Resolves to the stored entry.
   */
  append(stream: string, encode: (position: StreamPosition) => Buffer): Promise<HistoryEntry & StreamPosition>;
  /** The current position of `stream` (offset 0 in a fresh epoch if it never had a message). */
  position(stream: string): Promise<StreamPosition>;
  /** The messages after `after`, or `recovered: false` if they are no longer all there. */
  read(stream: string, after: StreamPosition): Promise<HistoryRead>;
}

export interface MemoryHistoryOptions {
  /** Messages kept per stream. Default 1_000. */
  maxEntries?: number;
  /** Age after which messages are dropped, in ms. Default 300_000 (5 minutes). */
  maxAgeMs?: number;
  now?: () => number;
}

interface Stream {
  readonly epoch: string;
  offset: number;
  /** Entries in offset order; `at` is the append time for age-based trimming. */
  entries: Array<HistoryEntry & { at: number }>;
}

/** History in this process's memory: lost on restart, which the fresh epochs report. */
export class MemoryHistoryStore implements HistoryStore {
  readonly #streams = new Map<string, Stream>();
  readonly #maxEntries: number;
  readonly #maxAgeMs: number;
  readonly #now: () => number;

  constructor({ maxEntries = 1_000, maxAgeMs = 300_000, now = Date.now }: MemoryHistoryOptions = {}) {
    this.#maxEntries = maxEntries;
    this.#maxAgeMs = maxAgeMs;
    this.#now = now;
  }

  async append(stream: string, encode: (position: StreamPosition) => Buffer): Promise<HistoryEntry & StreamPosition> {
    return this.appendNow(stream, encode);
  }

  /** Synchronous append, for callers that must not yield between appending and delivering. */
  appendNow(stream: string, encode: (position: StreamPosition) => Buffer): HistoryEntry & StreamPosition {
    const state = this.#stream(stream);
    state.offset += 1;
    const position = { epoch: state.epoch, offset: state.offset };
    const entry = { offset: state.offset, payload: encode(position), at: this.#now() };
    state.entries.push(entry);
    if (state.entries.length > this.#maxEntries) state.entries.splice(0, state.entries.length - this.#maxEntries);
    return { ...position, payload: entry.payload };
  }

  async position(stream: string): Promise<StreamPosition> {
    const state = this.#stream(stream);
    return { epoch: state.epoch, offset: state.offset };
  }

  async read(stream: string, after: StreamPosition): Promise<HistoryRead> {
    const state = this.#stream(stream);
    this.#trim(state);
    const position = { epoch: state.epoch, offset: state.offset };
    if (after.epoch !== state.epoch || after.offset > state.offset) return { position, recovered: false, entries: [] };
    const first = state.entries[0]?.offset ?? state.offset + 1;
    // Offsets after `after` down to `first` - 1 are gone when the history no longer reaches back.
    if (after.offset + 1 < first) return { position, recovered: false, entries: [] };
    return { position, recovered: true, entries: state.entries.filter((entry) => entry.offset > after.offset) };
  }

  #stream(name: string): Stream {
    let state = this.#streams.get(name);
    if (!state) {
      state = { epoch: randomBytes(6).toString('base64url'), offset: 0, entries: [] };
      this.#streams.set(name, state);
    }
    return state;
  }

  #trim(state: Stream): void {
    const oldest = this.#now() - this.#maxAgeMs;
    let drop = 0;
    while (drop < state.entries.length && (state.entries[drop] as { at: number }).at < oldest) drop++;
    if (drop > 0) state.entries.splice(0, drop);
  }
}
