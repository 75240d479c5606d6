import { LIMITS } from './constants.js';
import { ProtocolError } from './errors.js';
import { type ClientMessage, MessageType, type ServerMessage, type StreamPosition } from './messages.js';
import { isPlainObject } from './objects.js';

/** Returns undefined when `value` is acceptable, else what was expected ("a string of 1-64 characters"). */
type Check = (value: unknown) => string | undefined;
interface Field {
  readonly check: Check;
  readonly required: boolean;
}
type Schema = Readonly<Record<string, Field>>;

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

const text =
  (max: number, min = 1): Check =>
  (value) =>
    typeof value === 'string' && value.length >= min && value.length <= max
      ? undefined
      : `a string of ${min}-${max} characters`;

const boolean: Check = (value) => (typeof value === 'boolean' ? undefined : 'a boolean');

const anyJson: Check = (value) => (value === undefined ? 'present' : undefined);

const timestamp: Check = (value) =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? undefined : 'a non-negative integer';

const position: Check = (value) => {
  if (!isPlainObject(value)) return 'an object {epoch, offset}';
  const keys = Object.keys(value);
  const ok =
    keys.length === 2 && text(LIMITS.epochLength)(value.epoch) === undefined && timestamp(value.offset) === undefined;
  return ok ? undefined : 'an object {epoch: string, offset: non-negative integer}';
};

const resume: Check = (value) => {
  if (!isPlainObject(value)) return 'an object of stream positions';
  const streams = Object.keys(value);
  if (streams.length > LIMITS.resumeStreams) return `at most ${LIMITS.resumeStreams} streams`;
  for (const stream of streams) {
    if (stream.length === 0 || stream.length > LIMITS.streamNameLength || position(value[stream]) !== undefined) {
      return 'an object of stream positions {epoch, offset}';
    }
  }
  return undefined;
};

const streamStates: Check = (value) => {
  if (!isPlainObject(value)) return 'an object of stream states';
  for (const state of Object.values(value)) {
    if (!isPlainObject(state)) return 'an object of stream states {epoch, offset, recovered}';
    const ok =
      (state.epoch === undefined || text(LIMITS.epochLength)(state.epoch) === undefined) &&
      (state.offset === undefined || timestamp(state.offset) === undefined) &&
      (state.recovered === undefined || typeof state.recovered === 'boolean');
    if (!ok) return 'an object of stream states {epoch, offset, recovered}';
  }
  return undefined;
};

const member: Check = (value) => {
  if (!isPlainObject(value)) return 'an object {user, connection, info?}';
  const ok = typeof value.user === 'string' && typeof value.connection === 'string';
  return ok ? undefined : 'an object {user: string, connection: string, info?}';
};

const members: Check = (value) =>
  Array.isArray(value) && value.every((item) => member(item) === undefined) ? undefined : 'an array of {user, connection, info?}';

const oneOf =
  (...allowed: string[]): Check =>
  (value) =>
    typeof value === 'string' && allowed.includes(value) ? undefined : `one of ${allowed.map((a) => `'${a}'`).join(', ')}`;

const required = (check: Check): Field => ({ check, required: true });
const optional = (check: Check): Field => ({ check, required: false });

const id = text(LIMITS.idLength);
const topic = text(LIMITS.topicLength);
const token = text(LIMITS.tokenLength);

const CLIENT_SCHEMAS: Readonly<Record<string, Schema>> = {
  [MessageType.Auth]: { token: required(token), resume: optional(resume) },
  [MessageType.Message]: { data: required(anyJson), id: optional(id), token: optional(token) },
  [MessageType.Subscribe]: { topic: required(topic), id: optional(id), since: optional(position), token: optional(token) },
  [MessageType.Unsubscribe]: { topic: required(topic), id: optional(id) },
  [MessageType.Publish]: { topic: required(topic), data: required(anyJson), id: optional(id), token: optional(token) },
  [MessageType.Logout]: {},
  [MessageType.Ping]: { id: optional(id) },
  [MessageType.Rpc]: { id: required(id), method: required(text(LIMITS.methodLength)), data: optional(anyJson), token: optional(token) },
  [MessageType.Presence]: { id: required(id), topic: required(topic), countOnly: optional(boolean) },
};

const SERVER_SCHEMAS: Readonly<Record<string, Schema>> = {
  [MessageType.AuthOk]: { user: required(text(1024)), expiresAt: required(timestamp), streams: optional(streamStates), data: optional(anyJson) },
  [MessageType.ReauthRequired]: { deadline: required(timestamp), reason: required(oneOf('expiring', 'expired')) },
  [MessageType.Message]: {
    data: required(anyJson),
    topic: optional(topic),
    stream: optional(text(LIMITS.streamNameLength)),
    offset: optional(timestamp),
    epoch: optional(text(LIMITS.epochLength)),
  },
  [MessageType.Ack]: { id: required(id), streams: optional(streamStates), data: optional(anyJson) },
  [MessageType.Result]: { id: required(id), data: required(anyJson) },
  [MessageType.Error]: {
    id: optional(id),
    code: required(
      oneOf('forbidden', 'rejected', 'rate_limited', 'unavailable', 'not_found', 'bad_request', 'limit_exceeded', 'token_expired'),
    ),
    message: required(text(1024, 0)),
    retryAfter: optional(timestamp),
    temporary: optional(boolean),
    data: optional(anyJson),
  },
  [MessageType.LoggedOut]: {},
  [MessageType.Pong]: { id: optional(id) },
  [MessageType.Presence]: { id: required(id), topic: required(topic), count: required(timestamp), members: optional(members) },
  [MessageType.Join]: { topic: required(topic), member: required(member) },
  [MessageType.Leave]: { topic: required(topic), member: required(member) },
  [MessageType.Unsubscribed]: { topic: required(topic), reason: required(oneOf('forbidden', 'expired')), message: required(text(1024, 0)) },
};

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'string') return `a string of ${value.length} characters`;
  return typeof value;
}

/**
 * Rejects nesting deeper than `LIMITS.depth` and keys that could pollute prototypes when an
 * application merges the data into its own objects. Recursion stops at `LIMITS.depth`, so hostile
 * input cannot blow the stack.
 */
function assertSafeTree(value: unknown, depth = 1): void {
  if (typeof value !== 'object' || value === null) return;
  if (depth > LIMITS.depth) throw new ProtocolError(`frame nests deeper than ${LIMITS.depth} levels`);
  if (Array.isArray(value)) {
    for (const item of value) assertSafeTree(item, depth + 1);
    return;
  }
  for (const key of Object.keys(value)) {
    if (FORBIDDEN_KEYS.has(key)) throw new ProtocolError(`frame contains the forbidden key '${key}'`);
    assertSafeTree((value as Record<string, unknown>)[key], depth + 1);
  }
}

function validateAgainst<T>(value: unknown, schemas: Readonly<Record<string, Schema>>): T {
  if (!isPlainObject(value)) throw new ProtocolError(`frame must be a JSON object, got ${describe(value)}`);
  const { type } = value;
  if (typeof type !== 'string') throw new ProtocolError(`frame must have a string 'type', got ${describe(type)}`);
  const schema = Object.hasOwn(schemas, type) ? schemas[type] : undefined;
  if (!schema) throw new ProtocolError(`unknown message type '${type.slice(0, 32)}'`);
  assertSafeTree(value);
  for (const key of Object.keys(value)) {
    if (key !== 'type' && !Object.hasOwn(schema, key)) {
      throw new ProtocolError(`'${type}' does not accept the field '${key.slice(0, 32)}'`);
    }
  }
  // for...in over a schema literal walks V8's cached keys: no array of entries per frame. The
  // hasOwn guard keeps a polluted Object.prototype out of the schema.
  for (const name in schema) {
    if (!Object.hasOwn(schema, name)) continue;
    const field = schema[name] as Field;
    const present = Object.hasOwn(value, name);
    if (!present) {
      if (field.required) throw new ProtocolError(`'${type}' requires '${name}'`);
      continue;
    }
    const expected = field.check(value[name]);
    if (expected !== undefined) {
      throw new ProtocolError(`'${type}' expects '${name}' to be ${expected}, got ${describe(value[name])}`);
    }
  }
  return value as T;
}

/**
 * Validates resume positions given outside a frame (the `resume.` subprotocol entry).
 * Returns them, or throws a `ProtocolError`.
 */
export function validateResume(value: unknown): Record<string, StreamPosition> {
  const expected = resume(value);
  if (expected !== undefined) throw new ProtocolError(`resume must be ${expected}, got ${describe(value)}`);
  assertSafeTree(value);
  return value as Record<string, StreamPosition>;
}

function parseJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    throw new ProtocolError('frame is not valid JSON');
  }
}

/** Turns untrusted JSON from a client into a typed frame, or throws a `ProtocolError` naming the problem. */
export function validateClientMessage(value: unknown): ClientMessage {
  return validateAgainst<ClientMessage>(value, CLIENT_SCHEMAS);
}

/** Parses and validates one text frame from a client. */
export function parseClientMessage(raw: string): ClientMessage {
  return validateClientMessage(parseJson(raw));
}

/** Turns untrusted JSON from a server into a typed frame, or throws a `ProtocolError`. */
export function validateServerMessage(value: unknown): ServerMessage {
  return validateAgainst<ServerMessage>(value, SERVER_SCHEMAS);
}

/** Parses and validates one text frame from a server. */
export function parseServerMessage(raw: string): ServerMessage {
  return validateServerMessage(parseJson(raw));
}
