import type { StreamPosition, StreamState } from '@authsocket/protocol';
import { CorePart } from './context.js';
import { type Outbound, outbound } from './frames.js';
import type { Session } from './session.js';

export interface Recovered {
  /** Per-stream positions to report, or undefined without history. */
  readonly states: Record<string, StreamState> | undefined;
  readonly replay: readonly Outbound[];
}

/**
 * A record keyed by stream name, without a prototype: V8 keeps it as a dictionary from the start,
 * where a `{}` would grow a hidden class per distinct user's stream name.
 */
export function streamStates(): Record<string, StreamState> {
  return Object.create(null) as Record<string, StreamState>;
}

/** Replay from history across the seam with live delivery (resume, subscribe `since`). */
export class Recovery extends CorePart {

  /**
   * Replays `streams` from history across the seam with live delivery: each stream's start is read
   * before `join` starts live delivery, which is buffered until the replay is written; buffered
   * frames the replay already covered are dropped. So the connection gets every message after the
   * reported offset exactly once, in order. A start that history no longer covers (or another
   * epoch) replays nothing and reports `recovered: false` with the current position.
   */
  recover(
    session: Session,
    streams: ReadonlyMap<string, StreamPosition | undefined>,
    join: () => void,
  ): Recovered | Promise<Recovered> {
    if (this.options.history === false) {
      join();
      return { states: undefined, replay: [] };
    }
    const { broker } = this.options;
    let requested = false;
    for (const position of streams.values()) requested ||= position !== undefined;
    if (requested || broker.positionNow === undefined) return this.#fromHistory(session, streams, join);
    // Fresh streams on a broker in this process: join and take the positions in one synchronous
    // step. Nothing can be published in between, so there is nothing to read or replay.
    join();
    const states = streamStates();
    for (const stream of streams.keys()) {
      const position = broker.positionNow(stream);
      session.floors.set(stream, position.epoch, position.offset);
      states[stream] = position;
    }
    return { states, replay: [] };
  }

  async #fromHistory(
    session: Session,
    streams: ReadonlyMap<string, StreamPosition | undefined>,
    join: () => void,
  ): Promise<Recovered> {
    const broker = this.options.broker;
    const starts = new Map<string, { position: StreamPosition; requested: boolean }>();
    for (const [stream, requested] of streams) {
      starts.set(stream, { position: requested ?? (await broker.position(stream)), requested: requested !== undefined });
    }
    session.beginRecovery();
    join();
    const states = streamStates();
    const replay: Outbound[] = [];
    for (const [stream, start] of starts) {
      const read = await broker.read(stream, start.position);
      if (read.recovered) {
        session.floors.set(stream, read.position.epoch, start.position.offset);
        for (const publication of read.publications) replay.push(outbound(publication));
        states[stream] = {
          epoch: read.position.epoch,
          offset: start.position.offset,
          ...(start.requested ? { recovered: true } : {}),
        };
      } else {
        session.floors.set(stream, read.position.epoch, read.position.offset);
        states[stream] = { ...read.position, recovered: false };
      }
    }
    if (replay.length > 0) this.core.events.emit('replayed', { connection: session, count: replay.length });
    return { states, replay };
  }

  /** Writes the replay, then the live frames buffered meanwhile; the floors drop what overlaps. */
  finish(session: Session, recovered: Recovered): void {
    const buffered = session.endRecovery();
    if (buffered === undefined && recovered.replay.length === 0) return;
    const now = this.options.clock.now();
    const { delivery } = this.core;
    for (const out of recovered.replay) delivery.deliver(session, out, now);
    for (const out of buffered ?? []) delivery.deliver(session, out, now);
  }
}
