import type { ClientMessage } from '@authsocket/protocol';
import { CloseCode, toCloseReason } from '@authsocket/protocol';
import type { JWTPayload } from 'jose';
import { WebSocket } from 'ws';
import type { Deadline } from './deadlines.js';
import { OffsetFloors } from './floors.js';
import { WindowCounter } from './rate-limit.js';

/**
 * - `pending`: open, not (yet, or no longer after `logout`) authenticated; nothing is delivered.
 * - `authenticated`: identity bound, token valid; deliveries flow.
 * - `held`: token expired under the `reauth` policy; deliveries are queued until a valid reauth.
 * - `closed`: gone.
 */
export type ConnectionState = 'pending' | 'authenticated' | 'held' | 'closed';

/** What the application sees of one WebSocket connection. */
export interface Connection {
  readonly id: number;
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

/** A frame on its way to connections, with its stream position when it has one. */
export interface Outbound {
  readonly payload: Buffer;
  readonly stream?: string;
  readonly offset?: number;
  readonly epoch?: string;
}

/** ws copies its send options, so one object serves every frame. */
const TEXT_FRAME = { binary: false } as const;

/** How long a socket closed for being slow gets to take its close frame before it is cut. */
const SLOW_CLOSE_GRACE_MS = 1_000;

/** The gateway's record of one connection. Only the gateway mutates it. */
export class Session implements Connection {
  readonly id: number;
  readonly remoteAddress: string | undefined;
  readonly socket: WebSocket;
  state: ConnectionState = 'pending';
  user: string | undefined;
  claims: JWTPayload | undefined;
  expiresAt: number | undefined;
  /** The ticket's user in two-layer mode: the `auth` frame must name the same one. */
  ticketUser: string | undefined;
  #topics: Set<string> | undefined;
  /** Allocated at the first subscribe: most connections never join a topic. */
  get topics(): Set<string> {
    return (this.#topics ??= new Set());
  }
  // The three queues below are allocated on first use: most connections never need them.
  /** Outbound frames held while the token is expired (`held`). */
  held: Buffer[] | undefined;
  /** Deliveries buffered while a recovery (resume, subscribe `since`) is replaying history. */
  recovering: Outbound[] | undefined;
  /** What this connection has been given of each stream, to drop duplicates. */
  readonly floors = new OffsetFloors();
  /** Inbound frames received while `held`, processed in order after reauth. */
  heldInbound: ClientMessage[] | undefined;
  /** Inbound frames waiting while an earlier frame's async step (verification, authorize) runs. */
  backlog: ClientMessage[] | undefined;
  busy = false;
  /** Reading stopped because the backlog reached its bound. */
  paused = false;
  /** When the token expired (ms), to measure reauth latency. */
  expiredAt: number | undefined;
  /** The one pending deadline: auth timeout, expiry warning, expiry or reauth grace. */
  deadline: Deadline | undefined;
  alive = true;
  /** The code the gateway closed with, if it closed first (the peer's code otherwise). */
  closeCode: CloseCode | undefined;
  readonly frames = new WindowCounter();
  readonly authAttempts = new WindowCounter();
  readonly #sendToSelf: (session: Session, data: unknown) => boolean;

  constructor(
    id: number,
    socket: WebSocket,
    remoteAddress: string | undefined,
    sendToSelf: (session: Session, data: unknown) => boolean,
  ) {
    this.id = id;
    this.socket = socket;
    this.remoteAddress = remoteAddress;
    this.#sendToSelf = sendToSelf;
  }

  /** A method, not a comparison, so checks after an `await` are not narrowed away by the compiler. */
  isClosed(): boolean {
    return this.state === 'closed';
  }

  send(data: unknown): boolean {
    return this.#sendToSelf(this, data);
  }

  /** Writes a frame now, or closes `4008` when the peer is not reading fast enough. */
  write(payload: Buffer | string, maxBufferedBytes: number): void {
    if (this.socket.readyState !== WebSocket.OPEN) return;
    if (this.socket.bufferedAmount > maxBufferedBytes) {
      this.close(CloseCode.SlowConsumer, 'slow consumer');
      // The close frame queues behind data the peer is not reading: cut the socket if it stays stuck.
      setTimeout(() => this.socket.terminate(), SLOW_CLOSE_GRACE_MS).unref();
      return;
    }
    this.socket.send(payload, TEXT_FRAME);
  }

  close(code: CloseCode, reason: string): void {
    this.closeCode ??= code;
    this.deadline?.cancel();
    this.deadline = undefined;
    if (this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING) {
      this.socket.close(code, toCloseReason(reason));
    }
  }
}
