import { createHash } from 'node:crypto';
import { isPlainObject } from '@authsocket/protocol';
import type { EnvelopeIdentity } from '@authsocket/proxy';

/** The stream entry's two fields: the JSON envelope as signed, and its signature (`t=<ms>,v1=<hex>`). */
export const ENTRY_FIELDS = { envelope: 'envelope', sig: 'sig' } as const;

/** The default stream the gateway appends to and workers read. */
export const DEFAULT_STREAM = 'authsocket:inbox';

/** The longest idempotency key (`data.key`) a client may give, in characters. */
export const MAX_KEY_LENGTH = 128;

/**
 * One client `message` frame as a queue entry's `envelope` field (JSON). `identity` is the HTTP
 * proxy's identity block (`@authsocket/proxy`), with `token` in per-message-auth mode.
 */
export interface MessageEnvelope {
  readonly event: 'message';
  /** The entry format's version. */
  readonly v: 1;
  /** A random id per stored message (not per resend: a resend with the same `key` stores nothing). */
  readonly id: string;
  readonly identity: EnvelopeIdentity;
  /** The client's `message.data`, as it sent it. */
  readonly data: unknown;
  /** The client's idempotency key (`data.key`), when it gave one. */
  readonly key?: string;
}

/** Where a client's idempotency key lives: a string `key` in its message data, if that is an object. */
export function keyOf(data: unknown): { readonly key?: string; readonly invalid?: string } {
  if (!isPlainObject(data) || !Object.hasOwn(data, 'key') || data.key === undefined) return {};
  const { key } = data;
  if (typeof key !== 'string' || key === '' || key.length > MAX_KEY_LENGTH) {
    return { invalid: `'key' must be a non-empty string of at most ${MAX_KEY_LENGTH} characters` };
  }
  return { key };
}

/** The fields of a stream entry as Redis returns them (`[name, value, name, value…]`). */
export function fieldsOf(raw: unknown): Readonly<Record<string, string>> {
  const fields: Record<string, string> = {};
  if (!Array.isArray(raw)) return fields;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    if (typeof name === 'string' && typeof value === 'string' && !Object.hasOwn(fields, name)) fields[name] = value;
  }
  return fields;
}

/** Checks an envelope's shape after its signature passed: undefined when it is not one this worker reads. */
export function parseEnvelope(text: string): MessageEnvelope | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isPlainObject(value) || value.event !== 'message' || value.v !== 1 || typeof value.id !== 'string') return undefined;
  const identity = value.identity;
  if (!isPlainObject(identity)) return undefined;
  if (typeof identity.user !== 'string' || identity.user === '' || typeof identity.connection !== 'string') return undefined;
  if (typeof identity.node !== 'string' || typeof identity.exp !== 'number' || typeof identity.ts !== 'number') return undefined;
  if (!isPlainObject(identity.claims)) return undefined;
  if (identity.token !== undefined && typeof identity.token !== 'string') return undefined;
  if (value.key !== undefined && typeof value.key !== 'string') return undefined;
  return value as unknown as MessageEnvelope;
}

/** Which of `count` partitions a connection's messages go to: the same one for all of them, on every node. */
export function partitionOf(connection: string, count: number): number {
  if (count <= 1) return 0;
  return createHash('sha1').update(connection).digest().readUInt32BE(0) % count;
}

/** The stream of partition `index`: `<stream>:<index>` (the stream itself when there is one partition). */
export function partitionStream(stream: string, index: number, count: number): string {
  return count <= 1 ? stream : `${stream}:${index}`;
}
