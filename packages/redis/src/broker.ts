import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { StreamPosition } from '@authsocket/protocol';
import type {
  Audience,
  Broker,
  BrokerHandlers,
  BrokerStatus,
  ControlMessage,
  HistoryRead,
  Logger,
  Publication,
} from '@authsocket/server';
import type { Redis } from 'ioredis';
import { attempt, isDown, unavailable } from './errors.js';
import type { Keys } from './keys.js';
import { POSITION, PUBLISH, READ } from './scripts.js';

/*
 * The broker's health (`BrokerStatus`, shared with the server's `/healthz`). `ready`: the command
 * connection is up and this node is subscribed, so it publishes and receives. `connecting`: created,
 * no connection attempt has failed yet (publish waits for it, bounded). `reconnecting`: a connection
 * was lost or an attempt failed (refused, wrong password, TLS); it reconnects and resubscribes by
 * itself, and publish and read fail fast with `StoreUnavailableError` meanwhile. `closed`: `close()`
 * was called.
 */

export interface RedisBrokerEvents {
  status: [status: BrokerStatus, previous: BrokerStatus];
}

export interface RedisBrokerOptions {
  readonly keys: Keys;
  /** Publications kept per stream (exact `MAXLEN`). */
  readonly maxEntries: number;
  /** Age after which publications leave the history, in ms. */
  readonly maxAgeMs: number;
  /** How long an idle stream keeps its epoch and offset, in ms. */
  readonly streamTtlMs: number;
  /** How long `publish` waits for its publication to come back to this node, in ms. */
  readonly deliveryTimeoutMs: number;
  /** How long `start` waits for the broker to be ready, in ms. */
  readonly startTimeoutMs: number;
  /** Streams whose last position this node remembers to detect and repair gaps (least recently used go first). */
  readonly trackedStreams: number;
  readonly logger: Logger;
}

/**
 * What travels on a channel and is kept in history: one line of JSON header, a newline, then the
 * publication's data exactly as the gateway serialized it (never parsed or re-encoded on the way).
 * `n` is the publishing node's id and `s` its sequence number, so the publisher recognizes its own.
 */
interface Header {
  readonly n: string;
  readonly s: number;
  readonly to: Audience;
  readonly stream?: string;
  readonly offset?: number;
  readonly epoch?: string;
}

function isAudience(to: unknown): to is Audience {
  if (typeof to !== 'object' || to === null) return false;
  const audience = to as Record<string, unknown>;
  return typeof audience.user === 'string' || typeof audience.topic === 'string' || audience.everyone === true;
}

/** The header and publication of a payload, or undefined if it is not one this engine wrote. */
export function decode(payload: string): { header: Header; publication: Publication } | undefined {
  const newline = payload.indexOf('\n');
  if (newline < 0) return undefined;
  let header: Header;
  try {
    header = JSON.parse(payload.slice(0, newline)) as Header;
  } catch {
    return undefined;
  }
  if (typeof header !== 'object' || header === null || typeof header.n !== 'string' || !isAudience(header.to)) {
    return undefined;
  }
  const data = payload.slice(newline + 1);
  if (header.stream === undefined) return { header, publication: { to: header.to, data } };
  if (typeof header.stream !== 'string' || typeof header.offset !== 'number' || typeof header.epoch !== 'string') {
    return undefined;
  }
  const { to, stream, offset, epoch } = header;
  return { header, publication: { to, data, stream, offset, epoch } };
}

/** A fresh random epoch, offered to Redis on every call; used only when the stream has none. */
const newEpoch = (): string => randomBytes(9).toString('base64url');

type Decoded = NonNullable<ReturnType<typeof decode>>;

interface Pending {
  resolve(count: number): void;
  reject(error: unknown): void;
  readonly timer: ReturnType<typeof setTimeout>;
}

/**
 * A `Broker` on Redis. History per stream in a Redis Stream, an epoch and offset counter per stream
 * in a hash, and publish as one Lua script that allocates the offset, appends, trims and `SPUBLISH`es
 * on the stream's shard channel — so the channel carries a stream's publications in offset order and
 * every node, this one included, delivers them in that order. This node's own publication coming
 * back on its subscriber connection resolves `publish` with the count its handler returned.
 *
 * Uses two connections it does not own: `command` (scripts, reads) and `subscriber` (shard channels).
 */
export class RedisBroker extends EventEmitter<RedisBrokerEvents> implements Broker {
  /** Unique per broker instance: tells this node's publications from other nodes'. */
  readonly nodeId = randomBytes(9).toString('base64url');
  readonly #command: Redis;
  readonly #subscriber: Redis;
  readonly #options: RedisBrokerOptions;
  readonly #pending = new Map<number, Pending>();
  /** Per stream, the last position this node delivered or started connections from (LRU order). */
  readonly #seen = new Map<string, StreamPosition>();
  /** Streams being repaired from history, with the publications that arrived meanwhile, in order. */
  readonly #repairs = new Map<string, Decoded[]>();
  #handlers: BrokerHandlers | undefined;
  #status: BrokerStatus = 'connecting';
  #subscribed = false;
  /** Bumped on every subscriber (re)connection, so a late SSUBSCRIBE reply of an older one is ignored. */
  #generation = 0;
  #sequence = 0;
  #closed = false;
  /** A connection closed or failed since this broker was created: not ready means reconnecting. */
  #lost = false;

  constructor(command: Redis, subscriber: Redis, options: RedisBrokerOptions) {
    super();
    this.#command = command;
    this.#subscriber = subscriber;
    this.#options = options;
    subscriber.on('smessage', this.#onMessage);
    subscriber.on('ready', this.#onSubscriberReady);
    subscriber.on('close', this.#onSubscriberClose);
    command.on('ready', this.#update);
    command.on('close', this.#onCommandClose);
    if (subscriber.status === 'ready') this.#onSubscriberReady();
  }

  /** The current health; `status` events report every change. */
  get status(): BrokerStatus {
    return this.#status;
  }

  /** Resolves when the broker is ready; rejects with `StoreUnavailableError` after `timeoutMs` or on close. */
  ready(timeoutMs = this.#options.startTimeoutMs): Promise<void> {
    if (this.#status === 'ready') return Promise.resolve();
    if (this.#status === 'closed') return Promise.reject(unavailable(new Error('broker closed')));
    return new Promise((resolve, reject) => {
      const onStatus = (status: BrokerStatus) => {
        if (status !== 'ready' && status !== 'closed') return;
        clearTimeout(timer);
        this.off('status', onStatus);
        if (status === 'ready') resolve();
        else reject(unavailable(new Error('broker closed')));
      };
      const timer = setTimeout(() => {
        this.off('status', onStatus);
        reject(unavailable(new Error(`redis broker not ready after ${timeoutMs} ms (${this.#status})`)));
      }, timeoutMs);
      this.on('status', onStatus);
    });
  }

  /**
   * Registers the node's handlers and waits (up to `startTimeoutMs`) for the subscription. If Redis is
   * unreachable it rejects with `StoreUnavailableError`, and the broker keeps trying: it subscribes and
   * turns `ready` as soon as Redis answers.
   */
  async start(handlers: BrokerHandlers): Promise<void> {
    this.#handlers = handlers;
    await this.ready();
  }

  async publish(publication: Publication): Promise<number> {
    if (this.#status === 'connecting') await this.ready(this.#options.deliveryTimeoutMs);
    if (this.#status !== 'ready') throw unavailable(new Error(`redis broker is ${this.#status}`));
    const command = this.#command;
    const sequence = ++this.#sequence;
    const { stream } = publication;
    const header = JSON.stringify({ n: this.nodeId, s: sequence, to: publication.to, ...(stream === undefined ? {} : { stream }) });
    // Registered before sending: the publication may come back before the script's own reply.
    const delivered = this.#expect(sequence);
    try {
      if (stream === undefined) {
        await attempt(command, () => command.spublish(this.#options.keys.channel(0), `${header}\n${publication.data}`));
      } else {
        const keys = this.#options.keys.stream(stream);
        const { maxEntries, maxAgeMs, streamTtlMs } = this.#options;
        await attempt(command, () =>
          PUBLISH.run(
            command,
            [keys.meta, keys.history],
            // The header without its closing brace: the script appends offset and epoch.
            [newEpoch(), streamTtlMs, maxEntries, maxAgeMs, keys.channel, header.slice(0, -1), publication.data],
          ),
        );
      }
    } catch (error) {
      this.#settle(sequence, { error });
    }
    return delivered;
  }

  async control(message: ControlMessage): Promise<void> {
    const command = this.#command;
    const payload = JSON.stringify({ n: this.nodeId, revoke: message.revoke });
    await attempt(command, () => command.spublish(this.#options.keys.control, payload));
  }

  async position(stream: string): Promise<StreamPosition> {
    const command = this.#command;
    const keys = this.#options.keys.stream(stream);
    const reply = (await attempt(command, () =>
      POSITION.run(command, [keys.meta, keys.history], [newEpoch(), this.#options.streamTtlMs]),
    )) as [string, number];
    const position = { epoch: String(reply[0]), offset: Number(reply[1]) };
    this.#start(stream, position);
    return position;
  }

  async read(stream: string, after: StreamPosition): Promise<HistoryRead> {
    const command = this.#command;
    const keys = this.#options.keys.stream(stream);
    // An offset that is not a whole number cannot be resumed from: -1 reads as "older than history".
    const offset = Number.isSafeInteger(after.offset) ? after.offset : -1;
    const { streamTtlMs, maxAgeMs } = this.#options;
    const reply = (await attempt(command, () =>
      READ.run(command, [keys.meta, keys.history], [newEpoch(), streamTtlMs, maxAgeMs, String(after.epoch), offset]),
    )) as [string, number, number, ...string[]];
    const position = { epoch: String(reply[0]), offset: Number(reply[1]) };
    this.#start(stream, position);
    if (reply[2] !== 1) return { position, recovered: false, publications: [] };
    const publications: Publication[] = [];
    for (const payload of reply.slice(3) as string[]) {
      const decoded = decode(payload);
      // Never a partial replay: an entry this engine cannot read makes the whole read unrecoverable.
      if (!decoded) return { position, recovered: false, publications: [] };
      publications.push(decoded.publication);
    }
    return { position, recovered: true, publications };
  }

  /** Stops delivering and unsubscribes; the connections stay open (their owner closes them). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#handlers = undefined;
    this.#subscriber.off('smessage', this.#onMessage);
    this.#subscriber.off('ready', this.#onSubscriberReady);
    this.#subscriber.off('close', this.#onSubscriberClose);
    this.#command.off('ready', this.#update);
    this.#command.off('close', this.#onCommandClose);
    this.#failPending(new Error('broker closed'));
    this.#update();
    if (this.#subscribed && !isDown(this.#subscriber)) {
      const { keys } = this.#options;
      await Promise.all([keys.control, ...keys.channels].map((channel) => this.#subscriber.sunsubscribe(channel))).catch(
        () => {},
      );
    }
    this.#subscribed = false;
  }

  // ---------------------------------------------------------------- subscriber connection

  readonly #onSubscriberReady = (): void => {
    const generation = ++this.#generation;
    const { keys } = this.#options;
    // One SSUBSCRIBE per channel: on Redis Cluster each shard channel may live on another node.
    Promise.all([keys.control, ...keys.channels].map((channel) => this.#subscriber.ssubscribe(channel))).then(
      () => {
        if (generation !== this.#generation || this.#closed) return;
        this.#subscribed = true;
        this.#update();
      },
      (error: unknown) => {
        if (generation !== this.#generation || this.#closed) return;
        // The connection dropped meanwhile (the next 'ready' retries), or Redis refused (e.g. an ACL
        // without the channels): the broker stays not ready and says why.
        this.#options.logger.error({ err: String(error) }, 'redis broker could not subscribe');
      },
    );
  };

  readonly #onCommandClose = (): void => {
    this.#lost = true;
    this.#update();
  };

  readonly #onSubscriberClose = (): void => {
    this.#lost = true;
    this.#generation++;
    this.#subscribed = false;
    // Publications in flight may never come back on this connection: their publishers fail.
    this.#failPending(new Error('redis subscriber connection lost'));
    this.#update();
  };

  readonly #onMessage = (channel: string, message: string): void => {
    if (channel === this.#options.keys.control) return this.#onControl(message);
    const decoded = decode(message);
    if (!decoded) {
      this.#options.logger.warn({ channel }, 'redis broker ignored a malformed publication');
      return;
    }
    const { stream, epoch, offset } = decoded.publication;
    if (stream !== undefined) {
      const waiting = this.#repairs.get(stream);
      if (waiting) {
        waiting.push(decoded);
        return;
      }
      const last = this.#seen.get(stream);
      // The channel is ordered: a skipped offset means this node's subscription was interrupted.
      if (last && last.epoch === epoch && (offset as number) > last.offset + 1) return this.#repair(stream, last, decoded);
    }
    this.#dispatch(decoded);
  };

  /** Hands a publication to this node's handler; settles this node's own publish. */
  #dispatch({ header, publication }: Decoded): void {
    const count = this.#deliver(publication);
    if (header.n === this.nodeId) this.#settle(header.s, { count });
  }

  #deliver(publication: Publication): number {
    const { stream, epoch, offset } = publication;
    if (stream !== undefined) this.#track(stream, { epoch: epoch as string, offset: offset as number }, true);
    try {
      return this.#handlers?.publication(publication) ?? 0;
    } catch (error) {
      this.#options.logger.error({ err: String(error) }, 'publication handler failed');
      return 0;
    }
  }

  /**
   * Delivers what this node missed of `stream` between `last` and `next` from history, then `next`
   * and whatever arrived meanwhile, in order. If history no longer has it, connections that need it
   * learn on their next resume (`recovered: false`); the live ones carry on.
   */
  #repair(stream: string, last: StreamPosition, next: Decoded): void {
    const queue = [next];
    this.#repairs.set(stream, queue);
    const missed = { stream, after: last.offset, before: next.publication.offset };
    this.#options.logger.warn(missed, 'redis broker missed publications: repairing from history');
    this.read(stream, last)
      .then(
        (read) => {
          if (!read.recovered) return this.#options.logger.warn(missed, 'redis broker could not repair: history is gone');
          for (const publication of read.publications) {
            if (publication.epoch === last.epoch && (publication.offset as number) < (missed.before as number)) {
              this.#deliver(publication);
            }
          }
        },
        (error: unknown) => this.#options.logger.warn({ ...missed, err: String(error) }, 'redis broker could not repair'),
      )
      .finally(() => {
        this.#repairs.delete(stream);
        if (!this.#closed) for (const decoded of queue) this.#dispatch(decoded);
      })
      .catch(() => {});
  }

  /** A connection starts from `position` (position/read): remembered unless this node knows better. */
  #start(stream: string, position: StreamPosition): void {
    const last = this.#seen.get(stream);
    if (!last || last.epoch !== position.epoch) this.#track(stream, position, false);
  }

  /** Remembers the last position of `stream` (never lowered within an epoch), most recent last. */
  #track(stream: string, position: StreamPosition, delivered: boolean): void {
    const { trackedStreams } = this.#options;
    if (trackedStreams === 0) return;
    const last = this.#seen.get(stream);
    if (delivered && last && last.epoch === position.epoch && last.offset > position.offset) return;
    this.#seen.delete(stream);
    this.#seen.set(stream, position);
    if (this.#seen.size > trackedStreams) this.#seen.delete(this.#seen.keys().next().value as string);
  }

  #onControl(message: string): void {
    let parsed: { n?: unknown; revoke?: unknown };
    try {
      parsed = JSON.parse(message) as { n?: unknown; revoke?: unknown };
    } catch {
      return;
    }
    // This node already acted on its own control messages; they are for the others.
    if (parsed.n === this.nodeId || typeof parsed.revoke !== 'string') return;
    try {
      this.#handlers?.control({ revoke: parsed.revoke });
    } catch (error) {
      this.#options.logger.error({ err: String(error) }, 'control handler failed');
    }
  }

  // ---------------------------------------------------------------- own publications

  #expect(sequence: number): Promise<number> {
    const promise = new Promise<number>((resolve, reject) => {
      const timeoutMs = this.#options.deliveryTimeoutMs;
      const timer = setTimeout(
        () => this.#settle(sequence, { error: new Error(`publication did not come back within ${timeoutMs} ms`) }),
        timeoutMs,
      );
      this.#pending.set(sequence, { resolve, reject, timer });
    });
    // The caller gets the rejection when it awaits; until then it must not count as unhandled.
    promise.catch(() => {});
    return promise;
  }

  #settle(sequence: number, outcome: { count: number } | { error: unknown }): void {
    const pending = this.#pending.get(sequence);
    if (!pending) return;
    this.#pending.delete(sequence);
    clearTimeout(pending.timer);
    if ('count' in outcome) pending.resolve(outcome.count);
    else pending.reject(unavailable(outcome.error));
  }

  #failPending(error: Error): void {
    for (const sequence of [...this.#pending.keys()]) this.#settle(sequence, { error });
  }

  // ---------------------------------------------------------------- health

  readonly #update = (): void => {
    const previous = this.#status;
    let next: BrokerStatus;
    if (this.#closed) next = 'closed';
    else if (this.#subscribed && this.#command.status === 'ready') next = 'ready';
    // Before the first failure, still connecting; after it (refused, wrong password, lost): reconnecting.
    else next = this.#lost ? 'reconnecting' : 'connecting';
    if (next === previous) return;
    this.#status = next;
    const log = next === 'reconnecting' ? this.#options.logger.warn : this.#options.logger.info;
    log.call(this.#options.logger, { status: next, previous, node: this.nodeId }, 'redis broker status');
    this.emit('status', next, previous);
  };
}
