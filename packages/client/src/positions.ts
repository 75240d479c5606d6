import { LIMITS, type StreamPosition } from '@authsocket/protocol';

/** The stream coordinates a server `message` may carry. */
export interface StreamCoordinates {
  readonly stream?: string;
  readonly epoch?: string;
  readonly offset?: number;
}

/**
 * The last position seen on each stream: sent as `resume` in `auth` on reconnect, and used to drop
 * a message delivered twice (same stream and epoch, offset not past the last one seen). Keeps at most
 * `LIMITS.resumeStreams` streams, dropping the one updated longest ago.
 */
export class StreamPositions {
  readonly #positions = new Map<string, StreamPosition>();

  /** Records the message's position; false when it is a duplicate the application must not see. */
  accept({ stream, epoch, offset }: StreamCoordinates): boolean {
    if (stream === undefined || epoch === undefined || offset === undefined) return true;
    const last = this.#positions.get(stream);
    if (last && last.epoch === epoch && offset <= last.offset) return false;
    this.#positions.delete(stream);
    this.#positions.set(stream, { epoch, offset });
    this.#trim();
    return true;
  }

  #trim(): void {
    if (this.#positions.size <= LIMITS.resumeStreams) return;
    const oldest = this.#positions.keys().next().value as string;
    this.#positions.delete(oldest);
  }

  /**
   * Sets a stream's position as the server reported it (`auth_ok.streams`, `ack.streams`): the
   * connection receives exactly the messages after it, even when that moves back or to a new epoch.
   */
  reset(stream: string, position: StreamPosition): void {
    this.#positions.delete(stream);
    this.#positions.set(stream, { epoch: position.epoch, offset: position.offset });
    this.#trim();
  }

  /** The last position seen on `stream`. */
  get(stream: string): StreamPosition | undefined {
    return this.#positions.get(stream);
  }

  /** Forgets a stream (its topic was left), so it is not resumed. */
  delete(stream: string): void {
    this.#positions.delete(stream);
  }

  /** The `resume` field of `auth`, or undefined when nothing was received yet. */
  toResume(): Record<string, StreamPosition> | undefined {
    if (this.#positions.size === 0) return undefined;
    return Object.fromEntries(this.#positions);
  }

  clear(): void {
    this.#positions.clear();
  }
}
