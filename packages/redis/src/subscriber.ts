import { EventEmitter } from 'node:events';
import type { Logger } from '@authsocket/server';
import type { Redis } from 'ioredis';
import { Liveness, type LivenessOptions } from './liveness.js';

export interface SubscriberEvents {
  message: [channel: string, message: string];
  /** Every channel is subscribed (again). */
  up: [];
  /** A connection was lost or a channel moved: some channel is not subscribed. */
  down: [];
}

export interface SubscriberOptions {
  /** Every shard channel to subscribe to. */
  readonly channels: readonly string[];
  /** Which node serves which channels: one entry for a single server, one per slot owner on Cluster. */
  readonly layout: () => ReadonlyMap<string, readonly string[]>;
  /** A new subscriber connection to `node` (a key of `layout()`). */
  readonly connect: (node: string) => Redis;
  /** Called when a connection drops, so a Cluster re-reads who owns which slot. */
  readonly topologyChanged?: () => void;
  readonly liveness: LivenessOptions;
  readonly logger: Logger;
}

/** One subscriber connection to one node, subscribed to that node's channels, with its own PING. */
class Link {
  readonly redis: Redis;
  readonly node: string;
  readonly channels: readonly string[];
  subscribed = false;
  /** Bumped on every (re)connection, so a late SSUBSCRIBE reply of an older one is ignored. */
  #generation = 0;
  /** SSUBSCRIBEs refused in a row. */
  #refusals = 0;
  readonly #liveness: Liveness;
  readonly #owner: Subscriber;
  readonly #logger: Logger;

  constructor(owner: Subscriber, node: string, channels: readonly string[], options: SubscriberOptions) {
    this.#owner = owner;
    this.#logger = options.logger;
    this.node = node;
    this.channels = channels;
    this.redis = options.connect(node);
    this.redis.on('error', (error: Error) => this.#logger.debug({ role: 'subscriber', node, err: error.message }, 'redis connection error'));
    this.redis.on('smessage', this.#onMessage);
    this.redis.on('ready', this.#onReady);
    this.redis.on('close', this.#onClose);
    this.redis.on('end', this.#onEnd);
    this.#liveness = new Liveness(() => [this.redis], options.liveness, {
      alive: () => this.#logger.info({ role: 'subscriber', node }, 'redis link answering again'),
      dead: (_redis, reason, again) => {
        const log = again ? this.#logger.debug : this.#logger.warn;
        log.call(this.#logger, { role: 'subscriber', node, reason }, 'redis link not answering: reconnecting');
        this.#onClose();
      },
    });
    if (this.redis.status === 'ready') this.#onReady();
  }

  close(): void {
    this.#liveness.stop();
    this.#generation++;
    this.subscribed = false;
    this.redis.off('smessage', this.#onMessage);
    this.redis.off('ready', this.#onReady);
    this.redis.off('close', this.#onClose);
    this.redis.off('end', this.#onEnd);
    this.redis.disconnect();
  }

  readonly #onMessage = (channel: string, message: string): void => {
    this.#owner.emit('message', channel, message);
  };

  readonly #onReady = (): void => {
    const generation = ++this.#generation;
    // One SSUBSCRIBE per channel: channels of one node may still lie in different slots.
    Promise.all(this.channels.map((channel) => this.redis.ssubscribe(channel))).then(
      () => {
        if (generation !== this.#generation) return;
        this.#refusals = 0;
        this.subscribed = true;
        this.#owner.changed();
      },
      (error: unknown) => {
        if (generation !== this.#generation) return;
        // Redis refused (an ACL without the channels, MOVED during a failover or resharding): not
        // subscribed. The log says why (once, not on every retry); the Cluster re-reads its slot
        // map, and dropping the connection retries on a fresh one with the reconnection backoff.
        const log = this.#refusals++ === 0 ? this.#logger.error : this.#logger.debug;
        log.call(this.#logger, { node: this.node, err: String(error) }, 'redis broker could not subscribe');
        this.#owner.topologyChanged();
        this.redis.stream?.destroy();
      },
    );
  };

  /** ioredis gave up on this connection (it does on some aborted connects): a new one replaces it. */
  readonly #onEnd = (): void => {
    this.#logger.warn({ node: this.node }, 'redis subscriber connection ended: replacing it');
    this.#owner.relayout();
  };

  readonly #onClose = (): void => {
    this.#generation++;
    if (!this.subscribed) return;
    this.subscribed = false;
    this.#owner.changed();
    this.#owner.topologyChanged();
  };
}

/**
 * The subscriber side of the broker: every shard channel subscribed, on one connection per node
 * that serves some (one for a single server or a Sentinel-managed master; one per slot-owning
 * master on Redis Cluster, re-laid out whenever the Cluster's slot map changes). Each connection
 * resubscribes itself on reconnect; `up` and `down` tell the broker when all of them are subscribed.
 */
export class Subscriber extends EventEmitter<SubscriberEvents> {
  readonly #options: SubscriberOptions;
  readonly #links = new Map<string, Link>();
  #subscribed = false;
  #closed = false;

  constructor(options: SubscriberOptions) {
    super();
    this.#options = options;
  }

  /** True while every channel is subscribed on a connection to the node that serves it. */
  get subscribed(): boolean {
    return this.#subscribed;
  }

  /** The current connections, one per node. */
  get connections(): readonly Redis[] {
    return [...this.#links.values()].map((link) => link.redis);
  }

  /** (Re)reads the layout: connects to nodes that now serve channels, drops links that moved. */
  relayout(): void {
    if (this.#closed) return;
    const layout = this.#options.layout();
    for (const [node, link] of this.#links) {
      const channels = layout.get(node);
      if (!channels || channels.join() !== link.channels.join() || link.redis.status === 'end') {
        link.close();
        this.#links.delete(node);
      }
    }
    for (const [node, channels] of layout) {
      if (!this.#links.has(node) && channels.length > 0) this.#links.set(node, new Link(this, node, channels, this.#options));
    }
    this.changed();
  }

  /** @internal A link's state changed. */
  changed(): void {
    const covered = new Set([...this.#links.values()].flatMap((link) => (link.subscribed ? link.channels : [])));
    const subscribed = !this.#closed && this.#options.channels.every((channel) => covered.has(channel));
    if (subscribed === this.#subscribed) return;
    this.#subscribed = subscribed;
    this.emit(subscribed ? 'up' : 'down');
  }

  /** @internal */
  topologyChanged(): void {
    if (!this.#closed) this.#options.topologyChanged?.();
  }

  /** Unsubscribes politely when connected, then drops every connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const links = [...this.#links.values()];
    this.#links.clear();
    this.changed();
    await Promise.all(
      links.map(async (link) => {
        if (link.redis.status === 'ready') await link.redis.quit().catch(() => {});
        link.close();
      }),
    );
  }
}
