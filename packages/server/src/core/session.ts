import { type ClientMessage, type CloseCode, CloseCode as Codes, type ServerMessage, toCloseReason } from '@authsocket/protocol';
import type { JWTPayload } from 'jose';
import type { Deadline } from '../deadlines.js';
import type { Identity } from '../events.js';
import { OffsetFloors } from '../floors.js';
import { WindowCounter } from '../rate-limit.js';
import type { Core } from './context.js';
import { encode, type Outbound } from './frames.js';
import { type ServerSocket, type SocketEvents, SocketState } from './ports.js';
import { connectionId } from './ids.js';

/**
 * - `pending`: open, not (yet, or no longer after `logout`) authenticated; nothing is delivered.
 * - `authenticated`: identity bound, token valid; deliveries flow.
 * - `held`: token expired under the `reauth` policy; deliveries are queued until a valid reauth.
 * - `closed`: gone.
 */
export type ConnectionState = 'pending' | 'authenticated' | 'held' | 'closed';

/** What the application sees of one WebSocket connection. */
export interface Connection {
  /**
   * Unguessable and unique across nodes: what a backend replies to. Stable while one identity is
   * bound; a `logout` gives the socket a new one, so a late reply to the old user reaches no one.
   */
  readonly id: string;
  readonly remoteAddress: string | undefined;
  readonly state: ConnectionState;
  /** The authenticated user, or undefined while pending. */
  readonly user: string | undefined;
  readonly claims: JWTPayload | undefined;
  /** Token expiry in ms, or undefined while pending. */
  readonly expiresAt: number | undefined;
  readonly topics: ReadonlySet<string>;
  /** Sends `data` to this connection alone, if it is authenticated (or holds it, if held). */
  send(data: unknown): boolean;
  close(code: CloseCode, reason: string): void;
}

/** How long a socket closed for being slow gets to take its close frame before it is cut. */
const SLOW_CLOSE_GRACE_MS = 1_000;

const NO_TOPICS: ReadonlySet<string> = new Set();
const NO_GRANTS: ReadonlyMap<string, never> = new Map<string, never>();

/**
 * How a topic is held when a later event must re-check it: `permissions` (the permissions allowed
 * it: a reauth re-checks), `claim` (joined from `subscribeClaim` at connect: a reauth re-checks), or
 * a subscription token's grant (ends at its `exp`). A topic without one (a handler's or
 * `authorize`'s yes, `ConnectResult.topics`) stays until the client leaves it.
 */
export type TopicGrant = 'permissions' | 'claim' | { readonly expiresAt: number; readonly deadline: Deadline | undefined };

function terminate(socket: ServerSocket): void {
  socket.terminate();
}

/**
 * One connection: its identity, its queues and its deadline. Every state change is one of its
 * transitions (`bind`, `hold`, `release`, `logout`, `close`, `closed`); the gateway's collaborators
 * decide when, the session keeps itself consistent.
 */
export class Session implements Connection, SocketEvents {
  #id: string;
  readonly remoteAddress: string | undefined;
  readonly socket: ServerSocket;
  /** When the socket was accepted (the core's clock, ms). */
  readonly openedAt: number;
  readonly #core: Core;
  #state: ConnectionState = 'pending';
  #user: string | undefined;
  #claims: JWTPayload | undefined;
  #expiresAt: number | undefined;
  #ticketUser: string | undefined;
  #topics: Set<string> | undefined;
  /** Allocated at the first grant: most connections never need one. */
  #grants: Map<string, TopicGrant> | undefined;
  // The four queues below are allocated on first use: most connections never need them.
  /** Outbound frames held while the token is expired (`held`). */
  #held: Outbound[] | undefined;
  /** Deliveries buffered while a recovery (resume, subscribe `since`) is replaying history. */
  #recovering: Outbound[] | undefined;
  /** Inbound frames received while `held`, processed in order after reauth. */
  #heldInbound: ClientMessage[] | undefined;
  /** Inbound frames waiting while an earlier frame's async step (verification, authorize) runs. */
  #backlog: ClientMessage[] | undefined;
  #busy = false;
  /** Reading stopped because the backlog reached its bound. */
  #paused = false;
  /** When the token expired (ms), to measure reauth latency. */
  #expiredAt: number | undefined;
  /** The one pending deadline: auth timeout, expiry warning, expiry or reauth grace. */
  #deadline: Deadline | undefined;
  /** The code the gateway closed with, if it closed first (the peer's code otherwise). */
  #closeCode: CloseCode | undefined;
  /** What this connection has been given of each stream, to drop duplicates. */
  readonly floors = new OffsetFloors();
  readonly frames = new WindowCounter();
  readonly authAttempts = new WindowCounter();

  constructor(core: Core, id: string, socket: ServerSocket, remoteAddress: string | undefined) {
    this.#core = core;
    this.#id = id;
    this.socket = socket;
    this.remoteAddress = remoteAddress;
    this.openedAt = core.options.clock.now();
  }

  get id(): string {
    return this.#id;
  }

  get state(): ConnectionState {
    return this.#state;
  }

  get user(): string | undefined {
    return this.#user;
  }

  get claims(): JWTPayload | undefined {
    return this.#claims;
  }

  get expiresAt(): number | undefined {
    return this.#expiresAt;
  }

  /** The ticket's user in two-layer mode, until `bind`: the `auth` frame must name the same one. */
  get ticketUser(): string | undefined {
    return this.#ticketUser;
  }

  /** Allocated at the first subscribe: most connections never join a topic. */
  get topics(): ReadonlySet<string> {
    return this.#topics ?? NO_TOPICS;
  }

  get closeCode(): CloseCode | undefined {
    return this.#closeCode;
  }

  /** A method, not a comparison, so checks after an `await` are not narrowed away by the compiler. */
  isClosed(): boolean {
    return this.#state === 'closed';
  }

  send(data: unknown): boolean {
    return this.#core.delivery.toConnection(this, data);
  }

  // ------------------------------------------------------------ socket events (the transport's side)

  received(data: Uint8Array | string, isBinary: boolean): void {
    this.#core.inbound.received(this, data, isBinary);
  }

  failed(error: Error): void {
    this.#core.options.logger.debug({ id: this.id, err: error.message }, 'socket error');
  }

  /** The socket is gone: leave every index, drop every queue, report the close once. */
  closed(code: number): void {
    if (this.#state === 'closed') return;
    const user = this.#user;
    this.#core.listing.leaving(this);
    this.#detach();
    this.#state = 'closed';
    this.#backlog = undefined;
    const { registry, events, handler, options } = this.#core;
    registry.remove(this);
    const closeCode = this.#closeCode ?? code;
    events.emit('close', { connection: this, code: closeCode });
    if (handler.onDisconnect !== undefined) {
      const event = { connection: this, user, code: closeCode, durationMs: options.clock.now() - this.openedAt };
      const failed = (error: unknown) => options.logger.warn({ id: this.id, err: String(error) }, 'disconnect handler failed');
      try {
        Promise.resolve(handler.onDisconnect(event)).catch(failed);
      } catch (error) {
        failed(error);
      }
    }
    if (registry.all.size === 0) this.#core.drained?.();
  }

  // ------------------------------------------------------------ writing

  /** Writes a frame now, or closes `4008` when the peer is not reading fast enough. */
  write(payload: Buffer | string): void {
    const socket = this.socket;
    if (socket.readyState !== SocketState.Open) return;
    if (socket.bufferedAmount > this.#core.options.maxBufferedBytes) {
      this.close(Codes.SlowConsumer, 'slow consumer');
      // The close frame queues behind data the peer is not reading: cut the socket if it stays stuck.
      setTimeout(terminate, SLOW_CLOSE_GRACE_MS, socket).unref();
      return;
    }
    socket.sendText(payload);
  }

  /** Writes a protocol frame regardless of auth state (acks, errors, auth results). */
  writeFrame(frame: ServerMessage): void {
    this.write(encode(frame));
  }

  close(code: CloseCode, reason: string): void {
    this.#closeCode ??= code;
    this.clearDeadline();
    const { readyState } = this.socket;
    if (readyState === SocketState.Open || readyState === SocketState.Connecting) {
      this.socket.close(code, toCloseReason(reason));
    }
  }

  // ------------------------------------------------------------ identity transitions

  /** Opened with a ticket in two-layer mode: the `auth` frame must be for `user`. */
  expect(user: string | undefined): void {
    this.#ticketUser = user;
  }

  /** Binds (or re-binds, on reauth) an identity: deliveries flow. */
  bind(identity: Identity): void {
    this.#user = identity.user;
    this.#claims = identity.claims;
    this.#expiresAt = identity.expiresAt;
    this.#ticketUser = undefined;
    this.#state = 'authenticated';
    // A reauth: the registry learns the new expiry (a first bind is listed once it joins its user's index).
    this.#core.listing.changed(this);
  }

  /** A fresher token (per-message mode) moves the connection's expiry later. */
  extend(expiresAt: number): void {
    this.#expiresAt = expiresAt;
    this.#core.listing.changed(this);
  }

  /** The token lapsed under `reauth`: deliveries are held from now on. */
  hold(now: number): void {
    this.#state = 'held';
    this.#expiredAt = now;
    this.#core.listing.changed(this);
  }

  /** After a reauth: the held deliveries, then the frames the client sent while held, in order. */
  release(): void {
    const held = this.#held;
    const heldInbound = this.#heldInbound;
    this.#held = undefined;
    this.#heldInbound = undefined;
    for (const out of held ?? []) {
      // A topic (or stream) left meanwhile — a reauth's claims no longer allow it — gets none of what
      // was held for it: messages, with history or without, and presence events alike.
      const kept = out.topic !== undefined ? this.topics.has(out.topic) : out.stream === undefined || this.floors.get(out.stream) !== undefined;
      if (kept) this.write(out.payload);
    }
    if (heldInbound) (this.#backlog ??= []).unshift(...heldInbound);
  }

  /** How long the last expiry lasted until `now` (the reauth that ended it), once. */
  reauthLatency(now: number, wasHeld: boolean): number | undefined {
    const latency = wasHeld && this.#expiredAt !== undefined ? now - this.#expiredAt : undefined;
    this.#expiredAt = undefined;
    return latency;
  }

  /** Back to `pending`, the socket kept open for a new `auth`. */
  logout(): void {
    // Unlisted under the old id: the new one is listed again by the next bind.
    this.#core.listing.leaving(this);
    this.#detach();
    this.#core.registry.renamed(this, () => (this.#id = connectionId()));
    this.#state = 'pending';
    this.#user = undefined;
    this.#claims = undefined;
    this.#expiresAt = undefined;
    this.floors.clear();
  }

  /** What logout and close share: out of every index, no deadline, no queued deliveries. */
  #detach(): void {
    this.clearDeadline();
    this.#core.registry.unbind(this);
    this.#held = undefined;
    this.#heldInbound = undefined;
    this.#recovering = undefined;
    this.#expiredAt = undefined;
  }

  // ------------------------------------------------------------ deadline

  /** Replaces the pending deadline. */
  setDeadline(deadline: Deadline): void {
    this.#deadline?.cancel();
    this.#deadline = deadline;
  }

  clearDeadline(): void {
    this.#deadline?.cancel();
    this.#deadline = undefined;
  }

  // ------------------------------------------------------------ queues

  /** Keeps a delivery for after the reauth; false when `max` are held already. */
  holdOutbound(out: Outbound, max: number): boolean {
    const held = (this.#held ??= []);
    if (held.length >= max) return false;
    held.push(out);
    return true;
  }

  get heldCount(): number {
    return this.#held?.length ?? 0;
  }

  /** Keeps a client frame sent while held for after the reauth; false when `max` are kept already. */
  holdInbound(frame: ClientMessage, max: number): boolean {
    const heldInbound = (this.#heldInbound ??= []);
    if (heldInbound.length >= max) return false;
    heldInbound.push(frame);
    return true;
  }

  /** Live deliveries are buffered from now until `endRecovery`. */
  beginRecovery(): void {
    this.#recovering ??= [];
  }

  /** Buffers `out` when a recovery is replaying; false when none is. */
  bufferDuringRecovery(out: Outbound): boolean {
    if (this.#recovering === undefined || this.#state !== 'authenticated') return false;
    this.#recovering.push(out);
    return true;
  }

  /** Ends a recovery: what live delivery buffered meanwhile, or undefined when none was running. */
  endRecovery(): Outbound[] | undefined {
    const buffered = this.#recovering;
    this.#recovering = undefined;
    return buffered;
  }

  // ------------------------------------------------------------ the ordered backlog

  /** An async step of one frame is running: later frames wait. */
  get busy(): boolean {
    return this.#busy;
  }

  beginStep(): void {
    this.#busy = true;
  }

  endStep(): void {
    this.#busy = false;
  }

  /** Queues a frame behind the running step; returns how many wait. */
  enqueue(frame: ClientMessage): number {
    const backlog = (this.#backlog ??= []);
    backlog.push(frame);
    return backlog.length;
  }

  dequeue(): ClientMessage | undefined {
    return this.#backlog?.shift();
  }

  pauseReading(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.socket.pause();
  }

  resumeReading(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.socket.resume();
  }

  // ------------------------------------------------------------ topics (the registry's side)

  addTopic(topic: string): void {
    (this.#topics ??= new Set()).add(topic);
  }

  removeTopic(topic: string): void {
    this.#topics?.delete(topic);
    this.grant(topic, undefined);
  }

  clearTopics(): void {
    this.#topics?.clear();
    for (const grant of this.#grants?.values() ?? []) if (typeof grant === 'object') grant.deadline?.cancel();
    this.#grants?.clear();
  }

  /** How `topic` is held (see `TopicGrant`); undefined: by nothing a later event re-checks. */
  grantOf(topic: string): TopicGrant | undefined {
    return this.#grants?.get(topic);
  }

  /** Every topic held by a grant, with it. */
  grants(): ReadonlyMap<string, TopicGrant> {
    return this.#grants ?? NO_GRANTS;
  }

  /** Replaces how `topic` is held; a replaced token grant's deadline is cancelled. */
  grant(topic: string, grant: TopicGrant | undefined): void {
    const previous = this.#grants?.get(topic);
    if (previous === grant) return;
    if (typeof previous === 'object') previous.deadline?.cancel();
    if (grant === undefined) this.#grants?.delete(topic);
    else (this.#grants ??= new Map()).set(topic, grant);
  }
}
