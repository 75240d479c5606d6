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
  readonly id: number;
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

/** How the core answers an HTTP request: a JSON body that must not be cached. */
export interface HttpReply {
  json(status: number, body: unknown, headers?: Readonly<Record<string, string>>): void;
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

/**
 * The application side of the gateway: one implementation per backend path (the in-process
 * callbacks of `GatewayOptions`, an HTTP proxy, a queue). Every method may return a promise.
 */
export interface MessageHandler {
  /** A `message` frame: its `ack` follows once this settles; a throw answers `error {code: 'rejected'}`. */
  onMessage?(context: MessageContext): void | Promise<void>;
  /** A request that expects a result. No frame of `authsocket.v1` carries one yet. */
  onRpc?(context: MessageContext): unknown;
  /** Whether the connection may join `context.topic`; undefined lets `authorize` decide. */
  onSubscribe?(context: SubscribeContext): boolean | Promise<boolean>;
}
