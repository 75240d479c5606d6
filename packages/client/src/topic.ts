import { MessageType, type PresenceMember, type StreamPosition, type StreamState, type UnsubscribeReason } from '@authsocket/protocol';
import type { Attempt } from './attempt.js';
import { Waiters } from './deferred.js';
import { Emitter } from './emitter.js';
import { CancelledError, RequestRefusedError, SubscriptionEndedError } from './errors.js';
import type { InboundMessage } from './events.js';
import type { Settler } from './requests.js';

/**
 * Where a topic is:
 * - `unsubscribed`: not joined (never, or left with `unsubscribe()`, refused, ended by the server
 *   with `unsubscribed` (the `ended` event says why), or dropped by `logout()`/`close()`);
 * - `subscribing`: joined, waiting for the server to confirm it on the current socket (it is sent
 *   once the client is authenticated, and again on every new socket);
 * - `subscribed`: the server confirmed it on the current socket.
 */
export type TopicState = 'unsubscribed' | 'subscribing' | 'subscribed';

export interface TopicStateChange {
  readonly oldState: TopicState;
  readonly newState: TopicState;
}

export interface TopicEvents {
  state: TopicStateChange;
  /** A message published on this topic, while it is joined (the client's `message` event has it too). */
  message: InboundMessage;
  /** The server ended the subscription (`unsubscribed`); the topic is `unsubscribed` and not joined again on its own. */
  ended: SubscriptionEndedError;
  /** A connection joined this topic (presence with join/leave on, while joined; this client's own join too). */
  join: PresenceMember;
  /** A connection left this topic. */
  leave: PresenceMember;
}

/**
 * How a topic is granted by a subscription token: `token` as it is, or `getToken()` asked before
 * every `subscribe` frame (the first, each one after a reconnect): the backend mints a short one.
 */
export interface SubscribeOptions {
  readonly token?: string;
  readonly getToken?: () => Promise<string>;
}

/** What a topic needs from its client. @internal */
export interface TopicLink {
  /** The attempt frames go out on, while the client is `open`. */
  live(): Attempt | undefined;
  closed(): boolean;
  /** Sends `frame` with an `id`; `settler` gets the server's answer. */
  request(
    frame: { readonly type: typeof MessageType.Subscribe | typeof MessageType.Unsubscribe; readonly topic: string; readonly token?: string },
    settler: Settler,
  ): void;
  position(stream: string): StreamPosition | undefined;
  /** Stops resuming `stream`. */
  forget(stream: string): void;
  /** An error no caller can catch: reported as the client's `error` event. */
  report(error: unknown): void;
}

/**
 * One topic of a client, from `client.topic(name)` (the same object for the same name). Joined with
 * `subscribe()`, it is subscribed again on every new socket until `unsubscribe()`; a resubscription
 * never asks the server to replay: what a socket missed comes back through the client's resume.
 */
export class Topic {
  readonly name: string;
  readonly #link: TopicLink;
  readonly #emitter: Emitter<TopicEvents>;
  readonly #waiters = new Waiters();
  /** Streams the server named for this topic (`ack.streams`, `message.stream`); forgotten on `unsubscribe()`. */
  readonly #streams = new Set<string>();
  #state: TopicState = 'unsubscribed';
  /** One per join, aborted when the topic is left: answers to an earlier join do nothing. */
  #join: AbortController | undefined;
  /** The attempt the last `subscribe` frame went out on: another one means it must be sent again. */
  #sentOn: Attempt | undefined;
  /** The subscription token (or how to get one) of the last `subscribe()` that gave one. */
  #grant: SubscribeOptions = {};

  /** @internal Topics come from `client.topic(name)`. */
  constructor(name: string, link: TopicLink) {
    this.name = name;
    this.#link = link;
    this.#emitter = new Emitter<TopicEvents>((error) => link.report(error));
  }

  get state(): TopicState {
    return this.#state;
  }

  /** The last position seen on each of this topic's streams: where the next resume starts. */
  get positions(): Readonly<Record<string, StreamPosition>> {
    const positions: Record<string, StreamPosition> = {};
    for (const stream of this.#streams) {
      const position = this.#link.position(stream);
      if (position) positions[stream] = position;
    }
    return positions;
  }

  /**
   * Joins the topic, now or once authenticated, and again after every reconnect. Resolves when the
   * server confirms; rejects with `RequestRefusedError` (`forbidden`, `token_expired`), or
   * `CancelledError` when `unsubscribe()`, `logout()` or `close()` comes first. With a `token` or
   * `getToken`, the topic is granted by a subscription token; calling it again with a fresher one
   * while subscribed renews the grant (the position stays).
   */
  subscribe(options: SubscribeOptions = {}): Promise<void> {
    if (this.#link.closed()) return Promise.reject(new CancelledError('client is closed'));
    const renewing = options.token !== undefined || options.getToken !== undefined;
    if (renewing) this.#grant = options;
    if (this.#state === 'subscribed' && !renewing) return Promise.resolve();
    const confirmed = this.#waiters.add();
    if (!this.#join) {
      this.#join = new AbortController();
      this.#setState('subscribing');
    }
    const attempt = this.#link.live();
    if (attempt && this.#join && (this.#sentOn !== attempt || renewing)) this.#send(attempt);
    return confirmed;
  }

  /** Leaves the topic and stops resuming its streams. Resolves on the server's `ack` (at once when not connected). */
  unsubscribe(): Promise<void> {
    if (!this.#join) return Promise.resolve();
    this.#grant = {};
    const sentOn = this.#sentOn;
    for (const stream of this.#streams) this.#link.forget(stream);
    this.#streams.clear();
    this.#leave(new CancelledError(`unsubscribed from '${this.name}' before confirmation`));
    const attempt = this.#link.live();
    if (!attempt || sentOn !== attempt) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#link.request(
        { type: MessageType.Unsubscribe, topic: this.name },
        { resolve: () => resolve(), reject: (error) => (error instanceof RequestRefusedError ? reject(error) : resolve()) },
      );
    });
  }

  /** Listens to a typed event; returns the function that stops listening. */
  on<K extends keyof TopicEvents>(event: K, listener: (payload: TopicEvents[K]) => void): () => void {
    return this.#emitter.on(event, listener);
  }

  /** @internal The client authenticated `attempt`'s socket: send `subscribe` if it was not sent there. */
  resubscribe(attempt: Attempt): void {
    if (this.#join && this.#sentOn !== attempt) this.#send(attempt);
  }

  /** @internal The socket is gone: a confirmed topic waits for the next one. */
  disconnected(): void {
    if (this.#state === 'subscribed') this.#setState('subscribing');
  }

  /** @internal `logout()` or `close()`: the topic is dropped, its positions stay with the client's. */
  cancel(error: Error): void {
    if (this.#join) this.#leave(error);
  }

  /** @internal The server ended the subscription: left for good, until the application subscribes again. */
  ended(reason: UnsubscribeReason, message: string): void {
    if (!this.#join) return;
    for (const stream of this.#streams) this.#link.forget(stream);
    this.#streams.clear();
    const error = new SubscriptionEndedError(reason, message);
    this.#leave(error);
    this.#emitter.emit('ended', error);
  }

  /** @internal A message on this topic. */
  deliver(message: InboundMessage): void {
    if (!this.#join) return;
    if (message.stream !== undefined) this.#streams.add(message.stream);
    this.#emitter.emit('message', message);
  }

  /** @internal A `join` or `leave` frame for this topic. */
  presenceChanged(kind: 'join' | 'leave', member: PresenceMember): void {
    if (this.#join) this.#emitter.emit(kind, member);
  }

  #send(attempt: Attempt): void {
    const join = this.#join as AbortController;
    this.#sentOn = attempt;
    const { token, getToken } = this.#grant;
    if (getToken === undefined) return this.#request(join, token);
    getToken().then(
      (fresh) => {
        // A late token must not revive a topic left meanwhile, nor go out on a newer socket.
        if (join.signal.aborted || this.#sentOn !== attempt || this.#link.live() !== attempt) return;
        this.#request(join, fresh);
      },
      (error: unknown) => {
        const failure = error instanceof Error ? error : new Error(String(error));
        // A renewal that could not get a token leaves the current grant to run out (`ended`).
        if (this.#state === 'subscribed') this.#waiters.rejectAll(failure);
        else this.#refused(join, failure);
      },
    );
  }

  #request(join: AbortController, token: string | undefined): void {
    // A refused renewal leaves the subscription the server still holds: only its callers hear of it.
    const renewal = this.#state === 'subscribed';
    this.#link.request(
      { type: MessageType.Subscribe, topic: this.name, ...(token === undefined ? {} : { token }) },
      {
        resolve: ({ streams }) => this.#confirmed(join, streams),
        reject: (error) => {
          // A lost connection keeps the topic: it is sent again on the next socket.
          if (!(error instanceof RequestRefusedError) || join.signal.aborted) return;
          if (renewal) return this.#waiters.rejectAll(error);
          this.#refused(join, error);
        },
      },
    );
  }

  /** The join failed for good (refused, or no token could be had): the topic is left, the error told. */
  #refused(join: AbortController, error: Error): void {
    if (join.signal.aborted) return;
    const callers = this.#waiters.size;
    this.#leave(error);
    if (callers === 0) this.#link.report(error);
  }

  #confirmed(join: AbortController, streams: Readonly<Record<string, StreamState>> | undefined): void {
    const names = Object.keys(streams ?? {});
    // Left before the server confirmed: its streams must not be resumed.
    if (join.signal.aborted) {
      for (const stream of names) this.#link.forget(stream);
      return;
    }
    for (const stream of names) this.#streams.add(stream);
    this.#setState('subscribed');
    if (!join.signal.aborted) this.#waiters.resolveAll();
  }

  #leave(error: Error): void {
    this.#join?.abort();
    this.#join = undefined;
    this.#sentOn = undefined;
    this.#waiters.rejectAll(error);
    this.#setState('unsubscribed');
  }

  #setState(newState: TopicState): void {
    const oldState = this.#state;
    if (oldState === newState) return;
    this.#state = newState;
    this.#emitter.emit('state', { oldState, newState });
  }
}
