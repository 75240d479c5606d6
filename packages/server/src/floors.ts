/**
 * Per stream, the highest position a connection has been given (or told it starts after). A
 * publication at or below it in the same epoch is a duplicate (a replay overlapping a late
 * cross-node delivery) and is dropped, so each message reaches a connection once. A new epoch
 * (history lost) restarts offsets, so it is never compared with the old one.
 *
 * Most connections read one stream, their user's: its floor lives in fields, and a Map is made only
 * for a second stream (a topic), which keeps idle connections small.
 */
export class OffsetFloors {
  #stream: string | undefined;
  #epoch = '';
  #offset = 0;
  #others: Map<string, { epoch: string; offset: number }> | undefined;

  /** True when the connection already has `offset` of `stream` in `epoch`. */
  covers(stream: string, epoch: string, offset: number): boolean {
    if (stream === this.#stream) return epoch === this.#epoch && offset <= this.#offset;
    const floor = this.#others?.get(stream);
    return floor !== undefined && floor.epoch === epoch && offset <= floor.offset;
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

  clear(): void {
    this.#stream = undefined;
    this.#others = undefined;
  }
}
