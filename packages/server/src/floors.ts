import type { StreamPosition } from '@authsocket/protocol';

/** Where a publication stands against what a connection has of its stream. */
export const Arrival = {
  /** At or below what the connection has (same epoch): a replay overlapping a late delivery. Drop it. */
  Duplicate: 0,
  /** The very next offset, or a stream the connection holds no position in. Deliver it. */
  Next: 1,
  /**
   * Past the next offset, or in another epoch (history lost): delivering it would skip positions
   * silently. The connection must resume instead.
   */
  Gap: 2,
} as const;
export type Arrival = (typeof Arrival)[keyof typeof Arrival];

/**
 * Per stream, the highest position a connection has been given (or told it starts after). Every
 * publication of a stream reaches every connection reading it, in offset order, so the next one is
 * always `offset + 1` of the same epoch: anything else is a duplicate or a gap (`Arrival`).
 *
 * Most connections read one stream, their user's: its floor lives in fields, and a Map is made only
 * for a second stream (a topic), which keeps idle connections small.
 */
export class OffsetFloors {
  #stream: string | undefined;
  #epoch = '';
  #offset = 0;
  #others: Map<string, { epoch: string; offset: number }> | undefined;

  /** How a publication at `offset` of `stream` in `epoch` arrives for this connection. */
  classify(stream: string, epoch: string, offset: number): Arrival {
    if (stream === this.#stream) return arrival(this.#epoch, this.#offset, epoch, offset);
    const floor = this.#others?.get(stream);
    return floor === undefined ? Arrival.Next : arrival(floor.epoch, floor.offset, epoch, offset);
  }

  /** The connection's position in `stream`, if it reads it. */
  get(stream: string): StreamPosition | undefined {
    if (stream === this.#stream) return { epoch: this.#epoch, offset: this.#offset };
    const floor = this.#others?.get(stream);
    return floor && { epoch: floor.epoch, offset: floor.offset };
  }

  /** Records the connection's position in `stream`; updated in place, never reallocated. */
  set(stream: string, epoch: string, offset: number): void {
    if (this.#stream === undefined || stream === this.#stream) {
      this.#stream = stream;
      this.#epoch = epoch;
      this.#offset = offset;
      return;
    }
    this.#others ??= new Map();
    const floor = this.#others.get(stream);
    if (floor === undefined) this.#others.set(stream, { epoch, offset });
    else {
      floor.epoch = epoch;
      floor.offset = offset;
    }
  }

  /** Forgets `stream` (the connection left its topic). */
  delete(stream: string): void {
    if (stream === this.#stream) this.#stream = undefined;
    else this.#others?.delete(stream);
  }

  clear(): void {
    this.#stream = undefined;
    this.#others = undefined;
  }
}

function arrival(floorEpoch: string, floorOffset: number, epoch: string, offset: number): Arrival {
  if (epoch !== floorEpoch) return Arrival.Gap;
  if (offset <= floorOffset) return Arrival.Duplicate;
  return offset === floorOffset + 1 ? Arrival.Next : Arrival.Gap;
}
