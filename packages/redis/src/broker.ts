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
  PublishOptions,
} from '@authsocket/server';
import type { Redis } from 'ioredis';
import { attempt, type Client, isDown, publishFailure, unavailable } from './errors.js';
import type { Keys } from './keys.js';
import { Liveness, type LivenessOptions } from './liveness.js';
import { BROADCAST, POSITION, PUBLISH, READ } from './scripts.js';
import type { Subscriber } from './subscriber.js';

/*
 * The broker's health (`BrokerStatus`, shared with the server's `/healthz`). `ready`: the command
 * connection is up and answers its PINGs, and every shard channel is subscribed, so it publishes and
 * receives. `connecting`: created, no connection attempt has failed yet (publish waits for it,
 * bounded). `reconnecting`: a connection was lost, missed its liveness PING or an attempt failed
 * (refused, wrong password, TLS); it reconnects and resubscribes by itself, and publish and read
 * fail fast with `StoreUnavailableError` meanwhile. `closed`: `close()` was called.
 */

export interface RedisBrokerEvents {
  status: [status: BrokerStatus, previous: BrokerStatus];
  /** Publications this node missed on its subscriber link were looked up in history. */
  gapRepaired: [repair: { stream: string; missed: number; recovered: number }];
  /** A stream's publication arrived in another epoch than the last one this node saw (Redis lost its data). */
  epochChanged: [change: { stream: string; from: string; to: string }];
  /** A control message from another node arrived, `lagMs` after it was sent (by the two nodes' clocks). */
  control: [control: { lagMs: number }];
  /** The subscriber link is back after a loss and resubscribed; `handlers.resync` was called. */
  resynced: [];
}

export interface RedisBrokerOptions {
  readonly keys: Keys;
  /** This node's id for logs, metrics and `/healthz`; random when not given. */
  readonly nodeId?: string;
  /** Publications kept per stream (exact `MAXLEN`). */
  readonly maxEntries: number;
  /** Age after which publications leave the history, in ms. */
  readonly maxAgeMs: number;
  /** How long an idle stream keeps its epoch and offset, in ms. */
  readonly streamTtlMs: number;
  /** How long an idempotency key is remembered, in ms. */
  readonly idempotencyWindowMs: number;
  /** How long `publish` waits for its publication to come back to this node, in ms. */
  readonly deliveryTimeoutMs: number;
  /** How long `start` waits for the broker to be ready, in ms. */
  readonly startTimeoutMs: number;
  /** Streams whose last position this node remembers to detect and repair gaps (least recently used go first). */
  readonly trackedStreams: number;
  /** PING period and deadline on the command connections (the subscriber's own are in `Subscriber`). */
  readonly liveness: LivenessOptions;
  /** The command side's connections to PING: the one connection, or every Cluster master. */
  readonly commandNodes: () => readonly Redis[];
  readonly logger: Logger;
}

/**
 * What travels on a channel and is kept in history: one line of JSON header, a newline, then the
 * publication's data exactly as the gateway serialized it (never parsed or re-encoded on the way).
 * `n` is the publishing broker instance's id and `s` its sequence number, so the publisher recognizes its own.
 */
interface Header {
  readonly n: string;
  readonly s: number;
  readonly to: Audience;
  /** A presence event's kind (`join` / `leave`), only on publications without a stream. */
  readonly k?: 'join' | 'leave';
  readonly stream?: string;
  readonly offset?: number;
  readonly epoch?: string;
}

function isAudience(to: unknown): to is Audience {
  if (typeof to !== 'object' || to === null) return false;
  const audience = to as Record<string, unknown>;
  return (
    typeof audience.user === 'string' ||
    typeof audience.topic === 'string' ||
    audience.everyone === true ||
    typeof audience.connection === 'string'
  );
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
  if (header.stream === undefined) {
    if (header.k === undefined) return { header, publication: { to: header.to, data } };
    if (header.k !== 'join' && header.k !== 'leave') return undefined;
    return { header, publication: { to: header.to, data, kind: header.k } };
  }
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
  /** Settles with the count this node's handler returned, or 0 when the echo did not come back. */
  resolve(count: number): void;
  readonly timer: ReturnType<typeof setTimeout>;
}

/**
 * A `Broker` on Redis. History per stream in a Redis Stream, an epoch and offset counter per stream
 * in a hash, and publish as one Lua script that checks the idempotency key, allocates the offset,
 * appends, trims and `SPUBLISH`es on the stream's shard channel — so the channel carries a stream's
 * publications in offset order and every node, this one included, delivers them in that order.
 * This node's own publication coming back on its subscriber link resolves `publish` with the count
 * its handler returned.
 *
 * Uses a command connection (a `Redis` or a `Cluster`) and a `Subscriber` it does not own.
 */
export class RedisBroker extends EventEmitter<RedisBrokerEvents> implements Broker {
  readonly nodeId: string;
  /** Unique per broker instance, in every payload: tells this broker's publications from others'. */
  readonly #instance = randomBytes(9).toString('base64url');
  readonly #command: Client;
  readonly #subscriber: Subscriber;
  readonly #options: RedisBrokerOptions;
  readonly #liveness: Liveness;
  readonly #pending = new Map<number, Pending>();
  /** Per stream, the last position this node delivered or started connections from (LRU order). */
  readonly #seen = new Map<string, StreamPosition>();
  /** Streams being repaired from history, with the publications that arrived meanwhile, in order. */
  readonly #repairs = new Map<string, Decoded[]>();
  /** Wakes `ready()` waiters when the target is found unusable (`refuse`). */
  readonly #refused = new EventEmitter<{ refused: [error: Error] }>();
  #handlers: BrokerHandlers | undefined;
  #status: BrokerStatus = 'connecting';
  #refusal: Error | undefined;
  #sequence = 0;
  #closed = false;
  /** A connection closed or failed since this broker was created: not ready means reconnecting. */
  #lost = false;
  /** The subscriber link was up once: its next `up` is a recovery, followed by a resync. */
  #wasSubscribed = false;

  constructor(command: Client, subscriber: Subscriber, options: RedisBrokerOptions) {
    super();
    this.#command = command;
    this.#subscriber = subscriber;
    this.#options = options;
    this.nodeId = options.nodeId ?? this.#instance;
    subscriber.on('message', this.#onMessage);
    subscriber.on('up', this.#onSubscriberUp);
    subscriber.on('down', this.#onSubscriberDown);
    command.on('ready', this.#update);
    command.on('close', this.#onCommandClose);
    this.#liveness = new Liveness(options.commandNodes, options.liveness, {
      dead: (redis, reason, again) => {
        const node = `${redis.options.host}:${redis.options.port}`;
        const log = again ? options.logger.debug : options.logger.warn;
        log.call(options.logger, { role: 'command', node, reason }, 'redis link not answering: reconnecting');
        this.#lost = true;
        this.#update();
      },
      alive: this.#update,
    });
    if (subscriber.subscribed) this.#onSubscriberUp();
  }

  /** The current health; `status` events report every change. */
  get status(): BrokerStatus {
    return this.#status;
  }

  /**
   * Resolves when the broker is ready; rejects with `StoreUnavailableError` after `timeoutMs` or on
   * close, and with `ConfigError` when the target cannot work (e.g. a Cluster node given as a URL).
   */
  ready(timeoutMs = this.#options.startTimeoutMs): Promise<void> {
    if (this.#refusal) return Promise.reject(this.#refusal);
    if (this.#status === 'ready') return Promise.resolve();
    if (this.#status === 'closed') return Promise.reject(unavailable(new Error('broker closed')));
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.off('status', onStatus);
        this.#refused.off('refused', onRefused);
      };
      const onStatus = (status: BrokerStatus) => {
        if (status !== 'ready' && status !== 'closed') return;
        done();
        if (status === 'ready') resolve();
        else reject(unavailable(new Error('broker closed')));
      };
      const onRefused = (error: Error) => {
        done();
        reject(error);
      };
      const timer = setTimeout(() => {
        done();
        reject(unavailable(new Error(`redis broker not ready after ${timeoutMs} ms (${this.#status})`)));
      }, timeoutMs);
      this.on('status', onStatus);
      this.#refused.on('refused', onRefused);
    });
  }

  /** The target cannot work as configured: logged once, and `ready`/`start` reject with `error`. */
  refuse(error: Error): void {
    if (this.#refusal || this.#closed) return;
    this.#refusal = error;
    this.#options.logger.error({ node: this.nodeId, err: error.message }, 'redis broker cannot start');
    this.#refused.emit('refused', error);
    this.#update();
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

  async publish(publication: Publication, options?: PublishOptions): Promise<number> {
    const idempotencyKey = options?.idempotencyKey;
    if (idempotencyKey !== undefined && (typeof idempotencyKey !== 'string' || idempotencyKey === '')) {
      throw new TypeError("'idempotencyKey' must be a non-empty string");
    }
    if (this.#status === 'connecting') await this.ready(this.#options.deliveryTimeoutMs);
    const command = this.#command;
    // Known down: refused before sending, so certainly not published.
    if (this.#status !== 'ready' || isDown(command)) throw unavailable(new Error(`redis broker is ${this.#status}`));
    const sequence = ++this.#sequence;
    const { stream, to, kind } = publication;
    if (kind !== undefined && stream !== undefined) throw new TypeError('a join / leave publication has no stream');
    const { keys, idempotencyWindowMs } = this.#options;
    const header = JSON.stringify({ n: this.#instance, s: sequence, to, ...(stream === undefined ? {} : { stream }), ...(kind === undefined ? {} : { k: kind }) });
    const idempotency = idempotencyKey === undefined ? [] : [keys.idempotency(to, stream, idempotencyKey)];
    // Registered before sending: the publication may come back before the script's own reply.
    const echo = this.#expect(sequence);
    let reply: unknown;
    try {
      if (stream === undefined) {
        const channel = keys.channel(0);
        const payload = `${header}\n${publication.data}`;
        reply = await (idempotency.length === 0
          ? command.spublish(channel, payload)
          : BROADCAST.run(command, idempotency, [idempotencyWindowMs, channel, payload]));
      } else {
        const { meta, history, channel } = keys.stream(stream);
        const { maxEntries, maxAgeMs, streamTtlMs } = this.#options;
        reply = await PUBLISH.run(
          command,
          [meta, history, ...idempotency],
          // The header without its closing brace: the script appends offset and epoch.
          [newEpoch(), streamTtlMs, maxEntries, maxAgeMs, channel, header.slice(0, -1), publication.data, idempotencyWindowMs],
        );
      }
    } catch (error) {
      this.#settle(sequence, 0);
      throw publishFailure(error);
    }
    if (idempotency.length > 0 && Number(reply) === 0) {
      // A duplicate: nothing was published, nothing will come back.
      this.#settle(sequence, 0);
      return 0;
    }
    return echo;
  }

  async control(message: ControlMessage): Promise<void> {
    const command = this.#command;
    // The send time lets receivers measure how late revocations arrive.
    const payload = JSON.stringify({ n: this.#instance, t: Date.now(), ...message });
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

  /** Stops delivering; the connections stay open (their owner closes them). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#handlers = undefined;
    this.#liveness.stop();
    this.#subscriber.off('message', this.#onMessage);
    this.#subscriber.off('up', this.#onSubscriberUp);
    this.#subscriber.off('down', this.#onSubscriberDown);
    this.#command.off('ready', this.#update);
    this.#command.off('close', this.#onCommandClose);
    this.#settleAll('broker closed');
    this.#update();
  }

  // ---------------------------------------------------------------- subscriber link

  readonly #onSubscriberUp = (): void => {
    this.#update();
    if (!this.#wasSubscribed) {
      this.#wasSubscribed = true;
      return;
    }
    // Control messages sent while the link was down are lost: the node re-reads what they said.
    this.#options.logger.info({ node: this.nodeId }, 'redis broker resubscribed: resyncing');
    try {
      this.#handlers?.resync?.();
    } catch (error) {
      this.#options.logger.error({ err: String(error) }, 'resync handler failed');
    }
    this.emit('resynced');
  };

  readonly #onSubscriberDown = (): void => {
    this.#lost = true;
    // Publications in flight may never come back on this link; committed ones still count as published.
    this.#settleAll('subscriber link lost');
    this.#update();
  };

  readonly #onCommandClose = (): void => {
    this.#lost = true;
    this.#update();
  };

  readonly #onMessage = (channel: string, message: string): void => {
    if (channel === this.#options.keys.control) return this.#onControl(message);
    const decoded = decode(message);
    if (!decoded) {
      this.#options.logger.warn({ channel }, 'redis broker ignored a malformed publication');
      return;
    }
    const { stream, epoch, offset } = decoded.publication as { stream?: string; epoch: string; offset: number };
    if (stream !== undefined) {
      const waiting = this.#repairs.get(stream);
      if (waiting) {
        waiting.push(decoded);
        return;
      }
      const last = this.#seen.get(stream);
      if (last && last.epoch !== epoch) {
        // Redis lost the stream (restart, flush, expiry): whatever this node missed of the new epoch is in its history.
        this.#options.logger.warn({ stream, from: last.epoch, to: epoch }, 'redis broker saw a new epoch');
        this.emit('epochChanged', { stream, from: last.epoch, to: epoch });
        if (offset > 1) return this.#repair(stream, { epoch, offset: 0 }, decoded);
      } else if (last && offset > last.offset + 1) {
        // The channel is ordered: a skipped offset means this node's subscription was interrupted.
        return this.#repair(stream, last, decoded);
      }
    }
    this.#dispatch(decoded);
  };

  /** Hands a publication to this node's handler; settles this node's own publish. */
  #dispatch({ header, publication }: Decoded): void {
    const count = this.#deliver(publication);
    if (header.n === this.#instance) this.#settle(header.s, count);
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
   * Delivers what this node missed of `stream` after `from` and before `next` from history, then
   * `next` and whatever arrived meanwhile, in order. What history no longer has, the gateway's
   * sessions notice themselves (a skipped position closes them for a resume).
   */
  #repair(stream: string, from: StreamPosition, next: Decoded): void {
    const queue = [next];
    this.#repairs.set(stream, queue);
    const before = next.publication.offset as number;
    const missed = { stream, epoch: from.epoch, after: from.offset, before };
    this.#options.logger.warn(missed, 'redis broker missed publications: repairing from history');
    let recovered = 0;
    this.read(stream, from)
      .then(
        (read) => {
          if (!read.recovered) return this.#options.logger.warn(missed, 'redis broker could not repair: history is gone');
          for (const publication of read.publications) {
            if (publication.epoch === from.epoch && (publication.offset as number) < before) {
              this.#deliver(publication);
              recovered++;
            }
          }
        },
        (error: unknown) => this.#options.logger.warn({ ...missed, err: String(error) }, 'redis broker could not repair'),
      )
      .finally(() => {
        this.#repairs.delete(stream);
        if (this.#closed) return;
        this.emit('gapRepaired', { stream, missed: before - from.offset - 1, recovered });
        for (const decoded of queue) this.#dispatch(decoded);
      })
      .catch(() => {});
  }

  /**
   * A connection starts from `position` (position/read): remembered for a stream this node does not
   * track yet. A known stream keeps its last delivered position, even when the read shows a newer
   * epoch: the next live publication of that epoch then repairs from its start.
   */
  #start(stream: string, position: StreamPosition): void {
    if (!this.#seen.has(stream)) this.#track(stream, position, false);
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
    let parsed: { n?: unknown; t?: unknown; revoke?: unknown; close?: unknown; code?: unknown; reason?: unknown };
    try {
      parsed = JSON.parse(message) as typeof parsed;
    } catch {
      return;
    }
    // This node already acted on its own control messages; they are for the others.
    if (parsed.n === this.#instance) return;
    const { revoke, close, code, reason } = parsed;
    const control: ControlMessage | undefined =
      typeof revoke === 'string'
        ? { revoke }
        : typeof close === 'string' && typeof code === 'number' && typeof reason === 'string'
          ? { close, code, reason }
          : undefined;
    if (control === undefined) return;
    if (typeof parsed.t === 'number') this.emit('control', { lagMs: Math.max(0, Date.now() - parsed.t) });
    try {
      this.#handlers?.control(control);
    } catch (error) {
      this.#options.logger.error({ err: String(error) }, 'control handler failed');
    }
  }

  // ---------------------------------------------------------------- own publications

  /** Resolves with this node's count when the publication comes back; with 0 if it does not in time. */
  #expect(sequence: number): Promise<number> {
    return new Promise<number>((resolve) => {
      const timeoutMs = this.#options.deliveryTimeoutMs;
      const timer = setTimeout(() => {
        this.#options.logger.debug({ sequence, timeoutMs }, 'published, but not back on this node in time');
        this.#settle(sequence, 0);
      }, timeoutMs);
      this.#pending.set(sequence, { resolve, timer });
    });
  }

  #settle(sequence: number, count: number): void {
    const pending = this.#pending.get(sequence);
    if (!pending) return;
    this.#pending.delete(sequence);
    clearTimeout(pending.timer);
    pending.resolve(count);
  }

  /** Every publication in flight resolves 0: if its script committed, it is published (the caller still awaits the reply). */
  #settleAll(reason: string): void {
    if (this.#pending.size > 0) this.#options.logger.debug({ pending: this.#pending.size, reason }, 'publications not echoed');
    for (const sequence of [...this.#pending.keys()]) this.#settle(sequence, 0);
  }

  // ---------------------------------------------------------------- health

  readonly #update = (): void => {
    const previous = this.#status;
    let next: BrokerStatus;
    if (this.#closed) next = 'closed';
    else if (this.#subscriber.subscribed && this.#command.status === 'ready' && !this.#liveness.dead && !this.#refusal) {
      next = 'ready';
    }
    // Before the first failure, still connecting; after it (refused, wrong password, lost): reconnecting.
    else next = this.#lost ? 'reconnecting' : 'connecting';
    if (next === previous) return;
    this.#status = next;
    // One message for every change (dashboards and the gateway's tests key on it); degrading and
    // recovering are at warn, so an operator sees both.
    const { logger } = this.#options;
    const recovered = next === 'ready' && this.#lost;
    const log = next === 'reconnecting' || recovered ? logger.warn : logger.info;
    log.call(logger, { status: next, previous, node: this.nodeId, ...(recovered ? { recovered } : {}) }, 'redis broker status');
    this.emit('status', next, previous);
  };
}
