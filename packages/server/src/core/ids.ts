/**
 * A new connection id: a random UUID as one flat string. Node's `randomUUID()` joins 20 pieces
 * with `+`, and V8 keeps such a string as a tree of rope nodes until something flattens it: about
 * 470 bytes per id in the idle heap snapshot, for every connection. One copy leaves a plain
 * 36-character string (~56 bytes).
 */
export function connectionId(): string {
  return Buffer.from(globalThis.crypto.randomUUID(), 'latin1').toString('latin1');
}
