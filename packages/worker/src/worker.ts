import { EventEmitter } from 'node:events';
import { topicStream, userStream } from '@authsocket/protocol';
import { createRedisEngine, type RedisEngine } from '@authsocket/redis';
import { type Clock, ConfigError, type JwtOptions, type Logger, silentLogger, systemClock } from '@authsocket/server';
import { DEFAULT_STREAM, ENTRY_FIELDS, fieldsOf, partitionStream } from './entry.js';
import { backoffMs, connect, nonEmpty, positiveInteger, type RedisClient, release } from './redis.js';
import { EntryVerifier, type Refusal, type VerifyOptions } from './verify.js';

/** What a job handler gets for one entry, and how it answers the sender and others. */
export interface JobContext {
  /** The stream entry's id (`<ms>-<n>`): the client's `ack.data.entry`. Unique within its stream only. */
  readonly entryId: string;
  /** The stream it was read from: the `stream` option, or one of its partitions (`<stream>:<n>`). */
  readonly stream: string;
  /** The envelope's `id`: the same on every delivery of this entry. */
  readonly messageId: string;
  /** 1 on the first delivery; more after a failure or a crashed worker (at-least-once). */
  readonly attempt: number;
  readonly user: string;
  /** The verified token's claims in per-message mode, else the forwarded claims (`forwardClaims`). */
  readonly claims: Readonly<Record<string, unknown>>;
  /** The sender's connection id. */
  readonly connectionId: string;
  /** The gateway node that stored it. */
  readonly node: string;
  /** The client's `message.data`. */
  readonly data: unknown;
  /** The client's idempotency key (`data.key`), if it gave one: dedupe your own side effects on it. */
  readonly key: string | undefined;
  /** Sends `data` to the sender's connection, on whichever node holds it (at most once, not kept in history). */
  reply(data: unknown): Promise<void>;
  /** Publishes `data` on `topic` with the topic's history, as `gateway.publish` does. */
  publish(topic: string, data: unknown): Promise<void>;
  /** Sends `data` to every connection of `user`, with the user's history, as `gateway.sendToUser` does. */
  sendToUser(user: string, data: unknown): Promise<void>;
}

export type JobHandler = (context: JobContext) => unknown;

/** Thrown by a handler: the entry is dead-lettered at once with `reason`, never retried. */
export class PermanentJobError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'PermanentJobError';
  }
}

export interface WorkerOptions {
  /** `redis://` URL of the gateway's Redis (stream, consumer group, and the broker the replies go through). */
  redis: string;
  /** Default `authsocket:inbox`, the gateway's `--forward-stream`. */
  stream?: string;
  /** Consumer group; the workers sharing one group share the entries. Default `workers`. */
  group?: string;
  /** This worker's name in the group: unique per process, stable across its restarts if you can. Required. */
  consumer: string;
  handler: JobHandler;
  verify: VerifyOptions;
  /** Deliveries before an entry that keeps failing goes to the dead-letter stream. Default 5. */
  maxAttempts?: number;
  /** An entry pending this long (a crashed or stuck worker's, or a failed one) is claimed again, in ms. Default 30_000. */
  claimIdleMs?: number;
  /** How often this worker looks for such entries, in ms. Default: `claimIdleMs / 2`, at least 50. */
  claimIntervalMs?: number;
  /** Handlers running at once in this worker. Default 16. */
  concurrency?: number;
  /** How long one `XREADGROUP` blocks, in ms (also how long `close()` may wait for it). Default 1_000. */
  blockMs?: number;
  /** Where refused and exhausted entries go. Default `<stream>:dead`. */
  deadLetterStream?: string;
  /** `MAXLEN ~` of the dead-letter stream. Default 100_000. */
  deadLetterMaxLength?: number;
  /**
   * Ordered mode: the gateway spreads messages over `count` streams by connection
   * (`--forward-partitions`) and this worker alone reads the partitions in `owned`, one entry at a
   * time each, retrying a failed entry in place (`retryDelayMs` apart, up to `maxAttempts`) before
   * the next: one connection's messages are handled in the order they were stored. There is no
   * claiming from others: a worker that died resumes its partitions' pending entries, in order, when
   * it is started again with the same `consumer` name. `concurrency` and `claimIdleMs` do not apply.
   */
  partitions?: { readonly count: number; readonly owned: readonly number[] };
  /** Ordered mode: the pause before retrying a failed entry, in ms. Default 1_000. */
  retryDelayMs?: number;
  /** Key prefix of the gateway's Redis engine, if it is not the default `authsocket:`. */
  keyPrefix?: string;
  /** pino-compatible logger. Never given a token, the secret or message data. */
  logger?: Logger;
  clock?: Clock;
}

export const WORKER_DEFAULTS = {
  stream: DEFAULT_STREAM,
  group: 'workers',
  maxAttempts: 5,
  claimIdleMs: 30_000,
  concurrency: 16,
  blockMs: 1_000,
  deadLetterMaxLength: 100_000,
  retryDelayMs: 1_000,
} as const;

export interface WorkerEvents {
  processed: [{ readonly entryId: string; readonly attempt: number; readonly durationMs: number }];
  /** The handler threw; the entry stays pending and is claimed again after `claimIdleMs`. */
  failed: [{ readonly entryId: string; readonly attempt: number; readonly error: string }];
  /** Moved to the dead-letter stream and acknowledged: refused (`Refusal`), permanent, or out of attempts. */
  dead: [{ readonly entryId: string; readonly attempt: number; readonly reason: string }];
}

const OPTION_NAMES = new Set([
  'redis', 'stream', 'group', 'consumer', 'handler', 'verify', 'maxAttempts', 'claimIdleMs', 'claimIntervalMs',
  'concurrency', 'blockMs', 'deadLetterStream', 'deadLetterMaxLength', 'partitions', 'retryDelayMs', 'keyPrefix', 'logger', 'clock',
]);

type RawEntry = [string, unknown];

/** How handling one delivery ended: acknowledged or dead-lettered; failed and left pending; or Redis refused the outcome. */
type Outcome = 'settled' | 'failed' | 'unrecorded';

function partitionsOption(value: WorkerOptions['partitions']): { count: number; owned: number[] } | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== 'object') throw new ConfigError('partitions', 'expected { count, owned }');
  const count = positiveInteger('partitions.count', value.count);
  const owned = value.owned;
  if (!Array.isArray(owned) || owned.length === 0) throw new ConfigError('partitions.owned', 'expected a non-empty array of partition numbers');
  for (const index of owned) {
    if (!Number.isSafeInteger(index) || index < 0 || index >= count) {
      throw new ConfigError('partitions.owned', `expected partition numbers from 0 to ${count - 1}, got ${String(index)}`);
    }
  }
  if (new Set(owned).size !== owned.length) throw new ConfigError('partitions.owned', 'lists a partition twice');
  return { count, owned: [...owned] };
}

/**
 * The entries of an XREADGROUP reply for one stream: `[[stream, entries]]` in RESP2, a map (which
 * ioredis flattens to `[stream, entries]`) in RESP3; null when the block timed out.
 */
function streamEntries(reply: unknown): RawEntry[] {
  if (!Array.isArray(reply) || reply.length === 0) return [];
  const entries: unknown = typeof reply[0] === 'string' ? reply[1] : (reply[0] as unknown[])[1];
  return Array.isArray(entries) ? entries.filter((entry): entry is RawEntry => Array.isArray(entry) && typeof entry[0] === 'string') : [];
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Consumes the gateway's message stream in a consumer group: at-least-once, with retries through
 * the pending list, a dead-letter stream, and replies through the gateway's Redis broker.
 */
export class Worker extends EventEmitter<WorkerEvents> {
  readonly stream: string;
  readonly group: string;
  readonly consumer: string;
  readonly deadLetterStream: string;
  readonly #redis: string;
  readonly #handler: JobHandler;
  readonly #verifier: EntryVerifier;
  readonly #maxAttempts: number;
  readonly #claimIdleMs: number;
  readonly #claimIntervalMs: number;
  readonly #concurrency: number;
  readonly #blockMs: number;
  readonly #deadLetterMaxLength: number;
  readonly #keyPrefix: string | undefined;
  readonly #partitions: { count: number; owned: number[] } | undefined;
  readonly #retryDelayMs: number;
  readonly #readers: RedisClient[] = [];
  readonly #logger: Logger;
  #reader: RedisClient | undefined;
  #command: RedisClient | undefined;
  #engine: RedisEngine | undefined;
  readonly #inflight = new Map<string, Promise<void>>();
  #slotFreed: (() => void) | undefined;
  #loops: Promise<void>[] = [];
  #closing: Promise<void> | undefined;
  #stopping = false;
  readonly #wakers = new Set<() => void>();

  constructor(options: WorkerOptions) {
    super();
    if (options === null || typeof options !== 'object') throw new ConfigError('options', 'expected an object');
    for (const key of Object.keys(options)) if (!OPTION_NAMES.has(key)) throw new ConfigError(key, 'unknown option');
    if (typeof options.redis !== 'string' || !/^rediss?:\/\//.test(options.redis)) throw new ConfigError('redis', 'expected a redis:// or rediss:// URL');
    if (typeof options.handler !== 'function') throw new ConfigError('handler', 'expected a function (context) => unknown');
    this.#redis = options.redis;
    this.#handler = options.handler;
    this.stream = nonEmpty('stream', options.stream ?? WORKER_DEFAULTS.stream);
    this.group = nonEmpty('group', options.group ?? WORKER_DEFAULTS.group);
    this.consumer = nonEmpty('consumer', options.consumer);
    this.deadLetterStream = nonEmpty('deadLetterStream', options.deadLetterStream ?? `${this.stream}:dead`);
    if (this.deadLetterStream === this.stream) throw new ConfigError('deadLetterStream', 'must differ from stream');
    this.#maxAttempts = positiveInteger('maxAttempts', options.maxAttempts ?? WORKER_DEFAULTS.maxAttempts);
    this.#claimIdleMs = positiveInteger('claimIdleMs', options.claimIdleMs ?? WORKER_DEFAULTS.claimIdleMs);
    this.#claimIntervalMs = positiveInteger('claimIntervalMs', options.claimIntervalMs ?? Math.max(50, Math.floor(this.#claimIdleMs / 2)));
    this.#concurrency = positiveInteger('concurrency', options.concurrency ?? WORKER_DEFAULTS.concurrency);
    this.#blockMs = positiveInteger('blockMs', options.blockMs ?? WORKER_DEFAULTS.blockMs);
    this.#deadLetterMaxLength = positiveInteger('deadLetterMaxLength', options.deadLetterMaxLength ?? WORKER_DEFAULTS.deadLetterMaxLength);
    this.#partitions = partitionsOption(options.partitions);
    this.#retryDelayMs = positiveInteger('retryDelayMs', options.retryDelayMs ?? WORKER_DEFAULTS.retryDelayMs);
    this.#keyPrefix = options.keyPrefix === undefined ? undefined : nonEmpty('keyPrefix', options.keyPrefix);
    this.#logger = options.logger ?? silentLogger;
    this.#verifier = new EntryVerifier(options.verify, options.clock ?? systemClock);
  }

  /** Entries being handled by this worker now. */
  get inflight(): number {
    return this.#inflight.size;
  }

  /** Connects, creates the group (`MKSTREAM`, from the stream's start) and starts reading and claiming. */
  async start(): Promise<void> {
    if (this.#reader !== undefined) throw new Error('worker already started');
    const logError = (error: Error) => this.#logger.debug({ err: error.message }, 'worker redis link error');
    // The reader blocks in XREADGROUP: its own connection, with a timeout above the block time.
    this.#reader = connect('redis', this.#redis, { commandTimeout: this.#blockMs + 5_000, maxRetriesPerRequest: 1 }).client;
    this.#command = connect('redis', this.#redis, { commandTimeout: 5_000, maxRetriesPerRequest: 1 }).client;
    this.#reader.on('error', logError);
    this.#command.on('error', logError);
    this.#engine = createRedisEngine(this.#redis, {
      nodeId: `worker-${this.consumer}`,
      logger: this.#logger,
      ...(this.#keyPrefix === undefined ? {} : { keyPrefix: this.#keyPrefix }),
    });
    // A publisher only: what the broker delivers to this process reaches no connection.
    const partitions = this.#partitions;
    const streams = partitions ? partitions.owned.map((index) => partitionStream(this.stream, index, partitions.count)) : [this.stream];
    try {
      await Promise.all([...streams.map((stream) => this.#createGroup(stream)), this.#engine.broker.start({ publication: () => 0, control: () => undefined })]);
    } catch (error) {
      // Redis not there (or refusing): nothing started, nothing left open.
      await this.close();
      throw error;
    }
    this.#loops = partitions ? streams.map((stream) => this.#partitionLoop(stream)) : [this.#readLoop(), this.#claimLoop()];
    this.#logger.info({ stream: this.stream, group: this.group, consumer: this.consumer }, 'worker started');
  }

  /** Stops reading and claiming, waits for the handlers in flight, then closes its connections. Idempotent. */
  close(): Promise<void> {
    return (this.#closing ??= (async () => {
      this.#stopping = true;
      for (const wake of this.#wakers) wake();
      this.#slotFreed?.();
      await Promise.all(this.#loops);
      await Promise.all(this.#inflight.values());
      await this.#engine?.close();
      await Promise.all([this.#reader, this.#command, ...this.#readers].map((client) => (client ? release(client, true) : undefined)));
      this.#logger.info({ consumer: this.consumer }, 'worker stopped');
    })());
  }

  async #createGroup(stream: string = this.stream): Promise<void> {
    try {
      await (this.#command as RedisClient).xgroup('CREATE', stream, this.group, '0', 'MKSTREAM');
    } catch (error) {
      if (!describe(error).startsWith('BUSYGROUP')) throw error;
    }
  }

  async #slot(): Promise<void> {
    while (!this.#stopping && this.#inflight.size >= this.#concurrency) {
      await new Promise<void>((resolve) => (this.#slotFreed = resolve));
    }
  }

  async #readLoop(): Promise<void> {
    const reader = this.#reader as RedisClient;
    let failures = 0;
    while (!this.#stopping) {
      await this.#slot();
      if (this.#stopping) break;
      let reply: unknown;
      try {
        reply = await reader.call(
          'XREADGROUP', 'GROUP', this.group, this.consumer,
          'COUNT', this.#concurrency - this.#inflight.size, 'BLOCK', this.#blockMs, 'STREAMS', this.stream, '>',
        );
        failures = 0;
      } catch (error) {
        const message = describe(error);
        this.#logger.warn({ err: message }, 'stream read failed');
        // The stream or the group is gone (FLUSHALL, DEL): make them again.
        if (message.startsWith('NOGROUP')) await this.#createGroup().catch(() => undefined);
        await this.#pause(backoffMs(failures++));
        continue;
      }
      for (const [id, raw] of streamEntries(reply)) this.#run(id, raw, 1);
    }
  }

  /**
   * Ordered mode, one partition: this consumer's own pending entries first (left by an earlier life
   * of it), in order, then new ones; one at a time, each retried in place until it is settled.
   */
  async #partitionLoop(stream: string): Promise<void> {
    const reader = connect('redis', this.#redis, { commandTimeout: this.#blockMs + 5_000, maxRetriesPerRequest: 1 }).client;
    reader.on('error', (error: Error) => this.#logger.debug({ err: error.message }, 'worker redis link error'));
    this.#readers.push(reader);
    const command = this.#command as RedisClient;
    // '0' and then the last id read: the pending list; '>' once it is empty.
    let cursor = '0';
    let failures = 0;
    while (!this.#stopping) {
      let entry: RawEntry | undefined;
      try {
        const reply = await reader.call('XREADGROUP', 'GROUP', this.group, this.consumer, 'COUNT', 1, 'BLOCK', this.#blockMs, 'STREAMS', stream, cursor);
        entry = streamEntries(reply)[0];
        failures = 0;
      } catch (error) {
        const message = describe(error);
        this.#logger.warn({ stream, err: message }, 'stream read failed');
        if (message.startsWith('NOGROUP')) await this.#createGroup(stream).catch(() => undefined);
        await this.#pause(backoffMs(failures++));
        continue;
      }
      if (entry === undefined) {
        cursor = '>';
        continue;
      }
      const [id, raw] = entry;
      const resuming = cursor !== '>';
      if (resuming) cursor = id;
      let outcome: Outcome;
      try {
        if (raw === null) {
          // Pending, but trimmed from the stream (MAXLEN): nothing to handle.
          await command.xack(stream, this.group, id);
          continue;
        }
        let attempt = 1;
        if (resuming) {
          const pending = (await command.xpending(stream, this.group, id, id, 1)) as [string, string, number, number][];
          attempt = Number(pending[0]?.[3] ?? 1);
        }
        for (;;) {
          const job = this.#process(stream, id, raw, attempt);
          // Entry ids are unique per stream only: partitions can share one.
          this.#inflight.set(`${stream}/${id}`, job.then(() => undefined));
          outcome = await job;
          this.#inflight.delete(`${stream}/${id}`);
          if (outcome !== 'failed' || this.#stopping) break;
          await this.#pause(this.#retryDelayMs);
          if (this.#stopping) break;
          attempt += 1;
        }
      } catch (error) {
        outcome = 'unrecorded';
        this.#logger.warn({ stream, entryId: id, err: describe(error) }, 'entry left pending');
      }
      // Not settled (Redis refused the XACK, or closing mid-retry): read the pending list again, so nothing is skipped.
      if (outcome !== 'settled') {
        cursor = '0';
        if (outcome === 'unrecorded') await this.#pause(backoffMs(failures++));
      }
    }
  }

  /** Waits `ms`, or less when `close()` begins. */
  async #pause(ms: number): Promise<void> {
    if (this.#stopping) return;
    let wake: () => void = () => undefined;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#wakers.add(wake);
    });
    this.#wakers.delete(wake);
  }

  async #claimLoop(): Promise<void> {
    while (!this.#stopping) {
      await this.#pause(this.#claimIntervalMs);
      if (this.#stopping) break;
      try {
        await this.#touchInflight();
        await this.#claim();
      } catch (error) {
        this.#logger.warn({ err: describe(error) }, 'claiming pending entries failed');
      }
    }
  }

  /** Resets the idle time of entries still being handled here (`XCLAIM … JUSTID` counts no delivery), so nobody claims them. */
  async #touchInflight(): Promise<void> {
    if (this.#inflight.size === 0) return;
    const ids = [...this.#inflight.keys()];
    await (this.#command as RedisClient).call('XCLAIM', this.stream, this.group, this.consumer, 0, ...ids, 'JUSTID');
  }

  async #claim(): Promise<void> {
    const command = this.#command as RedisClient;
    let cursor = '0-0';
    do {
      const free = this.#concurrency - this.#inflight.size;
      if (free <= 0 || this.#stopping) return;
      const reply = (await command.call('XAUTOCLAIM', this.stream, this.group, this.consumer, this.#claimIdleMs, cursor, 'COUNT', free)) as [
        string,
        (RawEntry | null)[],
      ];
      cursor = reply[0];
      const entries = reply[1].filter((entry): entry is RawEntry => Array.isArray(entry) && !this.#inflight.has(entry[0]));
      if (entries.length === 0) continue;
      // XAUTOCLAIM counted this delivery; XPENDING says how many there have been.
      const pipeline = command.pipeline();
      for (const [id] of entries) pipeline.xpending(this.stream, this.group, id, id, 1);
      const counts = (await pipeline.exec()) ?? [];
      entries.forEach(([id, raw], index) => {
        const pending = counts[index]?.[1] as [string, string, number, number][] | undefined;
        const attempt = Number(pending?.[0]?.[3] ?? 2);
        this.#run(id, raw, attempt);
      });
    } while (cursor !== '0-0');
  }

  #run(entryId: string, raw: unknown, attempt: number): void {
    const job = this.#process(this.stream, entryId, raw, attempt).then(() => undefined).finally(() => {
      this.#inflight.delete(entryId);
      const freed = this.#slotFreed;
      this.#slotFreed = undefined;
      freed?.();
    });
    this.#inflight.set(entryId, job);
  }

  async #process(stream: string, entryId: string, raw: unknown, attempt: number): Promise<Outcome> {
    const fields = fieldsOf(raw);
    const started = performance.now();
    try {
      const verified = await this.#verifier.verify(fields);
      if (!verified.ok) return await this.#dead(stream, entryId, fields, attempt, verified.reason);
      // Crashed (or was killed) on this entry too often: not tried again.
      if (attempt > this.#maxAttempts) return await this.#dead(stream, entryId, fields, attempt, 'max_attempts');
      const { envelope, claims } = verified;
      let calls = 0;
      // Per delivery the n-th publication gets the same key, so a retried entry's earlier replies are not sent twice.
      const once = () => ({ idempotencyKey: `worker:${envelope.id}:${++calls}` });
      const broker = (this.#engine as RedisEngine).broker;
      const json = (data: unknown) => JSON.stringify(data) ?? 'null';
      const context: JobContext = {
        entryId,
        stream,
        messageId: envelope.id,
        attempt,
        user: envelope.identity.user,
        claims,
        connectionId: envelope.identity.connection,
        node: envelope.identity.node,
        data: envelope.data,
        key: envelope.key,
        reply: async (data) => void (await broker.publish({ to: { connection: envelope.identity.connection }, data: json(data) }, once())),
        publish: async (topic, data) => void (await broker.publish({ to: { topic }, data: json(data), stream: topicStream(topic) }, once())),
        sendToUser: async (user, data) => void (await broker.publish({ to: { user }, data: json(data), stream: userStream(user) }, once())),
      };
      try {
        await this.#handler(context);
      } catch (error) {
        if (error instanceof PermanentJobError) return await this.#dead(stream, entryId, fields, attempt, `permanent: ${error.message}`);
        const message = describe(error);
        this.emit('failed', { entryId, attempt, error: message });
        this.#logger.warn({ entryId, attempt, user: envelope.identity.user, err: message }, 'job failed');
        if (attempt >= this.#maxAttempts) return await this.#dead(stream, entryId, fields, attempt, `failed ${attempt} times: ${message}`);
        return 'failed';
      }
      await (this.#command as RedisClient).xack(stream, this.group, entryId);
      this.emit('processed', { entryId, attempt, durationMs: performance.now() - started });
      return 'settled';
    } catch (error) {
      // Redis did not take the XACK or the dead letter: the entry stays pending and is delivered again.
      this.#logger.warn({ entryId, err: describe(error) }, 'entry left pending');
      return 'unrecorded';
    }
  }

  /** Appends the entry and why to the dead-letter stream, then acknowledges it (in that order: never lost, maybe twice). */
  async #dead(stream: string, entryId: string, fields: Readonly<Record<string, string>>, attempt: number, reason: Refusal | string): Promise<'settled'> {
    const command = this.#command as RedisClient;
    await command.call(
      'XADD', this.deadLetterStream, 'MAXLEN', '~', this.#deadLetterMaxLength, '*',
      'entry', entryId, 'stream', stream, 'reason', reason, 'attempts', attempt, 'consumer', this.consumer,
      ENTRY_FIELDS.envelope, fields[ENTRY_FIELDS.envelope] ?? '', ENTRY_FIELDS.sig, fields[ENTRY_FIELDS.sig] ?? '',
    );
    await command.xack(stream, this.group, entryId);
    this.emit('dead', { entryId, attempt, reason });
    // The reason and ids only: never the envelope (it may hold a token) nor the data.
    this.#logger.warn({ entryId, attempt, reason }, 'entry dead-lettered');
    return 'settled';
  }
}

/** Checks `options` (a `ConfigError` names the wrong one); `start()` connects and begins consuming. */
export function createWorker(options: WorkerOptions): Worker {
  return new Worker(options);
}

export type { JwtOptions, Refusal, VerifyOptions };
