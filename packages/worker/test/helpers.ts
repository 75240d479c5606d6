import { randomUUID } from 'node:crypto';
import { signBody } from '@authsocket/proxy';
import type { Logger } from '@authsocket/server';
import type { Redis } from 'ioredis';
import type { MessageEnvelope } from '../src/index.js';

export const FORWARD_SECRET = 'forward-secret-that-is-at-least-32-bytes!';

/** Polls `check` every 20 ms until it is truthy; throws naming `what` after `timeoutMs`. */
export async function until<T>(what: string, check: () => T | Promise<T>, timeoutMs = 10_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export interface EnqueueSpec {
  readonly user?: string;
  readonly connection?: string;
  readonly data?: unknown;
  readonly token?: string;
  readonly secret?: string;
  /** Signature time, ms. */
  readonly at?: number;
}

/** Appends one entry in the documented format (what the gateway's forwarder writes), signed with `secret`. */
export async function enqueue(redis: Redis, stream: string, spec: EnqueueSpec = {}): Promise<string> {
  const { user = 'alice', connection = randomUUID(), data = null, token, secret = FORWARD_SECRET, at = Date.now() } = spec;
  const identity = { user, claims: {}, connection, node: 'test-node', exp: Math.floor(at / 1000) + 300, ts: at, ...(token ? { token } : {}) };
  const envelope: MessageEnvelope = { event: 'message', v: 1, id: randomUUID(), identity, data };
  const body = JSON.stringify(envelope);
  return (await redis.xadd(stream, '*', 'envelope', body, 'sig', signBody(secret, body, at))) as string;
}

/** A logger that keeps every line it was given, as JSON, to search for what must never be logged. */
export function recordingLogger(): { lines: string[]; logger: Logger } {
  const lines: string[] = [];
  const record = (level: string) => (fields: Record<string, unknown>, message: string) => void lines.push(JSON.stringify({ level, ...fields, message }));
  return { lines, logger: { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') } };
}
