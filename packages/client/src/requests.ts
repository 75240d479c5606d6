import type { PresenceMember, StreamState } from '@authsocket/protocol';

/** What answered a request: an `ack` (with its `streams`), an rpc's `result` (with its `data`) or a `presence` answer. */
export interface Answer {
  readonly streams?: Readonly<Record<string, StreamState>>;
  readonly data?: unknown;
  readonly count?: number;
  readonly members?: readonly PresenceMember[];
}

/** Something waiting for the server: resolved by an `ack` or a `result`, rejected by an `error` or a close. */
export interface Settler {
  resolve(answer: Answer): void;
  reject(error: Error): void;
}

/** Requests sent with an `id`, waiting for the server's `ack` or `error` with that id. */
export class Requests {
  readonly #pending = new Map<string, Settler>();
  #nextId = 0;

  /** Registers `settler` and returns the `id` its frame carries. */
  add(settler: Settler): string {
    const id = String(++this.#nextId);
    this.#pending.set(id, settler);
    return id;
  }

  /** The server's `ack` or `result` for `id`. */
  resolve(id: string, answer: Answer): void {
    this.#take(id)?.resolve(answer);
  }

  /** The server's `error` for `id`; false when nothing waits for it, so the error has no caller. */
  reject(id: string | undefined, error: Error): boolean {
    const settler = id === undefined ? undefined : this.#take(id);
    settler?.reject(error);
    return settler !== undefined;
  }

  /** Rejects every waiting request: the socket closed, or the client gave them up. */
  rejectAll(error: Error): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const settler of pending) settler.reject(error);
  }

  #take(id: string): Settler | undefined {
    const settler = this.#pending.get(id);
    this.#pending.delete(id);
    return settler;
  }
}
