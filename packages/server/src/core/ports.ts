import type { CloseCode } from '@authsocket/protocol';
import type { JWTPayload } from 'jose';
import type { PublishOptions } from '../broker.js';
import type { ResolvedOptions } from '../options.js';
import type { Admitted, Refused } from './admission.js';
import type { Connection } from './session.js';

// The seams of the core. A transport (adapters/node-ws.ts) implements the socket, request and reply
// ports and drives `Transport`; a backend path implements `MessageHandler`. The core imports no
// transport: `eslint.config.js` refuses `ws`, `node:http` and `node:net` under `core/`.

/** `ServerSocket.readyState` values, as the WebSocket standard numbers them. */
export const SocketState = { Connecting: 0, Open: 1, Closing: 2, Closed: 3 } as const;

/** One accepted WebSocket as the core drives it. ws's `WebSocket` fits it with one added method. */
export interface ServerSocket {
  /** `SocketState`: only an open socket is written to. */
  readonly readyState: number;
  /** Bytes accepted by `sendText` and not yet handed to the network: a slow reader's backlog. */
  readonly bufferedAmount: number;
  /** Sends one text frame. */
  sendText(data: Uint8Array | string): void;
  /** Starts the close handshake. */
  close(code: number, reason: string): void;
  /** Cuts the connection at once, without a close handshake. */
  terminate(): void;
  /** Stops reading frames, so the transport pushes back on the peer (TCP); `resume` reads again. */
  pause(): void;
  resume(): void;
}

/** What the transport reports about one socket, to the object `Transport.open` returned for it. */
export interface SocketEvents {
  readonly id: string;
  /** A frame arrived. Binary frames are refused (`1003`). */
  received(data: Uint8Array | string, isBinary: boolean): void;
  /** The socket is closed, with the code of whichever side closed first. */
  closed(code: number): void;
  /** The transport saw an error on the socket; `closed` follows. */
  failed(error: Error): void;
}

/** An upgrade request (or an HTTP request), as admission and the client-address rules read it. */
export interface UpgradeRequest {
  /** The request target: path and query, e.g. `/ws?ticket=…`. */
  readonly url: string;
  /** A header's value by lower-case name; a repeated header's values joined with `, `. */
  header(name: string): string | undefined;
  /** The peer's address as the socket sees it (a proxy's, behind one). */
  readonly remoteAddress: string | undefined;
}

/** A plain HTTP request to the gateway's own routes (ticket endpoint, health). */
export interface HttpRequest extends UpgradeRequest {
  readonly method: string;
}

/** How the core answers an HTTP request: a JSON body that must not be cached, or no body at all. */
export interface HttpReply {
  json(status: number, body: unknown, headers?: Readonly<Record<string, string>>): void;
  /** A response without a body (a CORS preflight's 204). */
  empty(status: number, headers?: Readonly<Record<string, string>>): void;
}

/** What a transport adapter calls on the core (`GatewayCore.transport`). */
export interface Transport {
  /** The resolved options an adapter needs (`maxPayload`, `heartbeatIntervalMs`, `logger`). */
  readonly options: ResolvedOptions;
  /** False once `close()` has begun: refuse upgrades with 503. */
  readonly accepting: boolean;
  /** Decides an upgrade: a value at once, or a promise when a ticket or handshake token is checked. */
  admit(request: UpgradeRequest): Admitted | Refused | Promise<Admitted | Refused>;
  /** Starts a connection on a socket the transport accepted after `admit`. */
  open(socket: ServerSocket, request: UpgradeRequest, admitted: Admitted): SocketEvents;
  /** Serves the gateway's own HTTP routes; false when `request` is for none of them. */
  serve(request: HttpRequest, reply: HttpReply): boolean;
  /** Every open connection's socket (for a transport's heartbeat). */
  sockets(): IterableIterator<ServerSocket>;
}

/** What a handler gets for one frame of one connection, and what it can do about it. */
export interface MessageContext {
  readonly connection: Connection;
  readonly user: string;
  /** Claims of the token that authenticated this frame (per-message mode) or the connection. */
  readonly claims: JWTPayload;
  readonly data: unknown;
  /** In per-message-auth mode, the token the client sent with this frame, for a backend to verify itself. */
  readonly token?: string;
  /** Sends `data` to this connection alone; false when it is not authenticated (nor held). */
  reply(data: unknown): boolean;
  /** Publishes `data` on `topic`, as `gateway.publish` does. */
  publish(topic: string, data: unknown, options?: PublishOptions): Promise<number>;
  /** Closes this connection. */
  close(code: CloseCode, reason: string): void;
}

/** A connection asking to join `topic` (a `subscribe` frame, or a topic stream in a resume). */
export interface SubscribeContext extends MessageContext {
  readonly topic: string;
}

/** A client's `publish` on `topic`, before it reaches the broker. */
export interface PublishContext extends MessageContext {
  readonly topic: string;
}

/** A client's `rpc` request: `data` is its payload, `method` what it asks for. */
export interface RpcContext extends MessageContext {
  readonly method: string;
}

/**
 * A verified identity about to be bound to a connection: `refresh` false on its first
 * authentication (before `auth_ok`), true on an in-band reauth. `expiresAt`: the token's `exp` in ms.
 */
export interface ConnectContext extends MessageContext {
  readonly refresh: boolean;
  readonly expiresAt: number;
}

/** What `onConnect` may add to the connection. */
export interface ConnectResult {
  /** Sent to the client in `auth_ok.data`. */
  readonly data?: unknown;
  /** Topics the connection joins server-side, as if it had subscribed (no authorize check). */
  readonly topics?: readonly string[];
}

/** What `onSubscribe` and `onPublish` answer: allow or deny, with data for the ack or a new payload. */
export type Verdict = boolean | { readonly allow: boolean; readonly data?: unknown };

/** A connection that closed, for `onDisconnect`: best effort, never awaited. */
export interface DisconnectEvent {
  readonly connection: Connection;
  /** Undefined when it never authenticated. */
  readonly user: string | undefined;
  readonly code: number;
  /** How long the connection lived, in ms. */
  readonly durationMs: number;
}

/**
 * The application side of the gateway: one implementation per backend path (the in-process
 * callbacks of `GatewayOptions`, an HTTP proxy, a queue). Every method may return a promise; a
 * throw of `HandlerError` says what the client sees (its code, message, and for `onConnect` the
 * close code), any other throw is `rejected` (or, from `onConnect`, a `1011` close).
 */
export interface MessageHandler {
  /** A verified identity, before `auth_ok` (first) or on a reauth: refuse by throwing, or add to it. */
  onConnect?(context: ConnectContext): void | ConnectResult | Promise<void | ConnectResult>;
  /**
   * A `message` frame: its `ack` follows once this settles, with what it returned (if not undefined)
   * as `ack.data` (a queue's entry id); a throw answers `error {code: 'rejected'}`.
   */
  onMessage?(context: MessageContext): unknown;
  /** An `rpc` frame: what this returns is the `result` frame's `data`. Without it, rpc answers `not_found`. */
  onRpc?(context: RpcContext): unknown;
  /** Whether the connection may join `context.topic`; without this method `authorize` decides (a return that is not a verdict refuses). */
  onSubscribe?(context: SubscribeContext): Verdict | Promise<Verdict>;
  /** Whether a client's publish goes out, and with which payload (`data`); without this method `authorize` decides. */
  onPublish?(context: PublishContext): Verdict | Promise<Verdict>;
  /** A connection closed. Best effort: a crash or a lost process reports nothing. */
  onDisconnect?(event: DisconnectEvent): void;
}
