import type { StreamState } from '@authsocket/protocol';

/** Something waiting for the server: resolved by an `ack` (with its `streams`), rejected by an `error` or a close. */
export interface Settler {
  resolve(streams: Readonly<Record<string, StreamState>> | undefined): void;
  reject(error: Error): void;
}

export interface Deferred<T = void> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: Error): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
