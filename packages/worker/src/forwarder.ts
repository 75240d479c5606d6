import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Envelopes, MIN_SECRET_BYTES, signBody } from '@authsocket/proxy';
import {
  type Clock,
  ConfigError,
  HandlerError,
  type Logger,
  type MessageContext,
  type MessageHandler,
  silentLogger,
  systemClock,
} from '@authsocket/server';
import { DEFAULT_STREAM, ENTRY_FIELDS, keyOf, type MessageEnvelope, partitionOf, partitionStream } from './entry.js';
import { connect, nonEmpty, positiveInteger, type RedisClient, type RedisSource, release, Script } from './redis.js';

export interface StreamForwarderOptions {
  /** Where the stream lives: a `redis://` URL, or an ioredis client (then yours to close). */
  redis: RedisSource;
  /** The stream appended to. Default `authsocket:inbox`. With Redis Cluster, give it a hash tag (`{authsocket}:inbox`). */
  stream?: string;
  /** `XADD MAXLEN ~` bound: the stream keeps about this many entries, oldest trimmed first. Default 100_000. */
  maxLength?: number;
  /** HMAC-SHA256 key of each entry's `sig` field, at least 32 bytes. Required. */
  secret: string;
  /** This gateway node, sent as `identity.node`. Required. */
  nodeId: string;
  /** JWT claims copied into `identity.claims`. Default none. */
  forwardClaims?: readonly string[];
  /**
   * Streams to spread messages over, by a hash of the connection id: `<stream>:0` … `<stream>:<n-1>`
   * (just `<stream>` when 1). One connection's messages all go to one of them, so a worker owning it
   * alone handles them in order (`WorkerOptions.partitions`). Default 1.
   */
  partitions?: number;
  /** How long a client's idempotency key (`data.key`) maps to its first entry, in ms. Default 86_400_000 (a day). */
  dedupeTtlMs?: number;
  /** How long an `XADD` may take before the client is told `unavailable`, in ms. Default 2_000. */
  commandTimeoutMs?: number;
  /** pino-compatible logger. Default: silent. Never given a token, the secret or message data. */
  logger?: Logger;
  clock?: Clock;
}

export const FORWARDER_DEFAULTS = {
  stream: DEFAULT_STREAM,
  maxLength: 100_000,
  dedupeTtlMs: 86_400_000,
  partitions: 1,
  commandTimeoutMs: 2_000,
} as const;

/**
 * What the client's `ack.data` carries: the entry's id, `stream` when there are partitions (an id
 * is unique within its stream only), and `duplicate` when a resend found its first entry.
 */
export interface Forwarded {
  readonly entry: string;
  readonly stream?: string;
  readonly duplicate?: true;
}

export interface StreamForwarderEvents {
  /** One message stored (or found stored, `duplicate`), with the time Redis took. */
  forwarded: [{ readonly entry: string; readonly duplicate: boolean; readonly durationMs: number }];
  /** One message not stored: the client got `unavailable`. */
  failed: [{ readonly reason: string; readonly durationMs: number }];
}

/**
 * Appends the dedupe mapping and the entry in one script, so a resend with the same key never
 * appends twice. KEYS[1] the stream, KEYS[2] (optional) the dedupe key; ARGV maxlen, envelope, sig, ttl.
 */
const FORWARD = new Script(`
local dedupe = KEYS[2]
if dedupe then
  local first = redis.call('GET', dedupe)
  if first then return {first, 1} end
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', '${ENTRY_FIELDS.envelope}', ARGV[2], '${ENTRY_FIELDS.sig}', ARGV[3])
-- '<id> <stream>': a resend from another connection may map to another partition.
if dedupe then redis.call('SET', dedupe, id .. ' ' .. KEYS[1], 'NX', 'PX', ARGV[4]) end
return {id .. ' ' .. KEYS[1], 0}
`);

const OPTION_NAMES = new Set(['redis', 'stream', 'maxLength', 'secret', 'nodeId', 'forwardClaims', 'partitions', 'dedupeTtlMs', 'commandTimeoutMs', 'logger', 'clock']);

/**
 * The gateway's `onMessage` as a Redis Stream: each client `message` becomes one signed entry, and
 * the client's `ack` (with `data: {entry}`) is sent only once Redis has committed it. When Redis
 * does not answer, the client gets `error {code: 'unavailable', temporary: true}` and no ack.
 */
export class StreamForwarder extends EventEmitter<StreamForwarderEvents> implements MessageHandler {
  readonly stream: string;
  readonly partitions: number;
  readonly #client: RedisClient;
  readonly #owned: boolean;
  readonly #envelopes: Envelopes;
  readonly #secret: string;
  readonly #maxLength: number;
  readonly #dedupeTtlMs: number;
  readonly #logger: Logger;
  readonly #clock: Clock;
  #closed = false;

  constructor(options: StreamForwarderOptions) {
    super();
    for (const key of Object.keys(options)) if (!OPTION_NAMES.has(key)) throw new ConfigError(key, 'unknown option');
    if (typeof options.secret !== 'string' || options.secret === '') throw new ConfigError('secret', 'is required');
    if (Buffer.byteLength(options.secret, 'utf8') < MIN_SECRET_BYTES) throw new ConfigError('secret', `must be at least ${MIN_SECRET_BYTES} bytes`);
    const nodeId = nonEmpty('nodeId', options.nodeId);
    this.stream = nonEmpty('stream', options.stream ?? FORWARDER_DEFAULTS.stream);
    this.partitions = positiveInteger('partitions', options.partitions ?? FORWARDER_DEFAULTS.partitions);
    this.#maxLength = positiveInteger('maxLength', options.maxLength ?? FORWARDER_DEFAULTS.maxLength);
    this.#dedupeTtlMs = positiveInteger('dedupeTtlMs', options.dedupeTtlMs ?? FORWARDER_DEFAULTS.dedupeTtlMs);
    const commandTimeout = positiveInteger('commandTimeoutMs', options.commandTimeoutMs ?? FORWARDER_DEFAULTS.commandTimeoutMs);
    const forwardClaims = options.forwardClaims ?? [];
    if (!Array.isArray(forwardClaims) || forwardClaims.some((claim) => typeof claim !== 'string' || claim === '')) {
      throw new ConfigError('forwardClaims', 'expected an array of claim names');
    }
    this.#secret = options.secret;
    this.#logger = options.logger ?? silentLogger;
    this.#clock = options.clock ?? systemClock;
    this.#envelopes = new Envelopes(nodeId, forwardClaims, this.#clock);
    // Fail at once while Redis is away (no offline queue), and never resend a script whose reply was lost.
    const { client, owned } = connect('redis', options.redis, {
      commandTimeout,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
    });
    this.#client = client;
    this.#owned = owned;
    // ioredis emits 'error' on every failed reconnect; without a listener Node would throw it.
    if (owned) client.on('error', (error: Error) => this.#logger.debug({ err: error.message }, 'forwarder redis link error'));
  }

  /** The dedupe key of `user`'s idempotency key: the user's length first, so `a:b`+`c` and `a`+`b:c` differ. */
  dedupeKey(user: string, key: string): string {
    return `${this.stream}:dedupe:${user.length}:${user}:${key}`;
  }

  onMessage = async (context: MessageContext): Promise<Forwarded> => {
    const { key, invalid } = keyOf(context.data);
    if (invalid !== undefined) throw new HandlerError('bad_request', invalid);
    if (this.#closed) throw new HandlerError('unavailable', 'queue unavailable', { temporary: true });
    const identity = this.#envelopes.identity(context);
    const envelope: MessageEnvelope = {
      event: 'message',
      v: 1,
      id: randomUUID(),
      identity,
      data: context.data ?? null,
      ...(key === undefined ? {} : { key }),
    };
    const body = JSON.stringify(envelope);
    const sig = signBody(this.#secret, body, this.#clock.now());
    const stream = partitionStream(this.stream, partitionOf(identity.connection, this.partitions), this.partitions);
    const keys = key === undefined ? [stream] : [stream, this.dedupeKey(context.user, key)];
    const started = performance.now();
    let reply: unknown;
    try {
      reply = await FORWARD.run(this.#client, keys, [this.#maxLength, body, sig, this.#dedupeTtlMs]);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.emit('failed', { reason, durationMs: performance.now() - started });
      // The connection id, not the user's data or token.
      this.#logger.warn({ connection: context.connection.id, err: reason }, 'message not enqueued');
      throw new HandlerError('unavailable', 'queue unavailable', { temporary: true, cause: error });
    }
    const [stored, duplicate] = reply as [string, number];
    const space = stored.indexOf(' ');
    const entry = space < 0 ? stored : stored.slice(0, space);
    const where = space < 0 ? this.stream : stored.slice(space + 1);
    this.emit('forwarded', { entry, duplicate: duplicate === 1, durationMs: performance.now() - started });
    return { entry, ...(this.partitions > 1 ? { stream: where } : {}), ...(duplicate === 1 ? { duplicate: true as const } : {}) };
  };

  /** `XLEN` of the stream (summed over its partitions), for a metrics gauge; rejects when Redis does not answer. */
  async length(): Promise<number> {
    const streams = Array.from({ length: this.partitions }, (_, index) => partitionStream(this.stream, index, this.partitions));
    const lengths = await Promise.all(streams.map((stream) => this.#client.xlen(stream)));
    return lengths.reduce((sum: number, length) => sum + Number(length), 0);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await release(this.#client, this.#owned);
  }
}

/** Checks `options` (a `ConfigError` names the wrong one) and connects to Redis without waiting. */
export function createStreamForwarder(options: StreamForwarderOptions): StreamForwarder {
  return new StreamForwarder(options);
}
