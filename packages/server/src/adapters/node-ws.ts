import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { SUBPROTOCOL } from '@authsocket/protocol';
import { WebSocket, WebSocketServer } from 'ws';
import type { Admitted, Refused } from '../core/admission.js';
import { GatewayCore } from '../core/gateway.js';
import { REFUSAL_BODY } from '../core/http.js';
import { isPromise } from '../core/frames.js';
import type { HttpReply, HttpRequest, ServerSocket, SocketEvents } from '../core/ports.js';
import type { GatewayOptions } from '../options.js';
import { TextFrames } from './text-frames.js';

// The one file that knows `ws` and Node's HTTP upgrade: it turns upgrades into the core's
// `admit`/`open`, refusals into real HTTP responses, and pings peers that may have gone.

/** ws copies its send options, so one object serves every frame. */
const TEXT_FRAME = { binary: false } as const;

/**
 * ws's socket as the core's `ServerSocket`, with a slot for its session, so one set of listeners
 * serves every socket. Declared in the class (ws's `WebSocket` option), the slots live in the
 * object itself; a property added later would cost each socket an out-of-object property array.
 */
class SessionSocket extends WebSocket implements ServerSocket {
  session!: SocketEvents;
  /** Answered the last ping. */
  alive = true;
  /** The upgraded TCP socket, the one handed to ws, which ws writes its frames to. */
  wire!: Duplex;
  /** The gateway's frame cache: on the prototype of each gateway's subclass, so no slot per socket. */
  declare readonly frames: TextFrames;

  /**
   * A payload Buffer goes out as a frame built once for every socket it is sent to, written to the
   * TCP socket directly. That keeps ws's order: without permessage-deflate (off here) and Blobs
   * (never sent), ws's sender never queues, it writes each frame at once to this same socket; and
   * once ws has started closing (its close frame written or the peer's received) nothing more is
   * written. The write counts in `bufferedAmount` as ws's own do (the socket's writable length).
   */
  sendText(data: Uint8Array | string): void {
    if (typeof data === 'string') return this.send(data, TEXT_FRAME);
    if (this.readyState !== WebSocket.OPEN) return;
    this.wire.write(this.frames.of(data));
  }
}

/** A `SessionSocket` class whose sockets share one gateway's frame cache. */
function socketClass(frames: TextFrames): typeof SessionSocket {
  class GatewaySocket extends SessionSocket {}
  Object.defineProperty(GatewaySocket.prototype, 'frames', { value: frames });
  return GatewaySocket;
}

// One set of listeners for every socket, finding the session on the socket: no closure per connection.
function onSocketMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
  (this as SessionSocket).session.received(data, isBinary);
}
function onSocketPong(this: WebSocket): void {
  (this as SessionSocket).alive = true;
}
function onSocketError(this: WebSocket, error: Error): void {
  (this as SessionSocket).session.failed(error);
}
function onSocketClose(this: WebSocket, code: number): void {
  (this as SessionSocket).session.closed(code);
}
function destroySocket(this: Duplex): void {
  this.destroy();
}

/** Node's request as the core's `HttpRequest` (and `UpgradeRequest`). */
class NodeRequest implements HttpRequest {
  readonly #req: IncomingMessage;

  constructor(req: IncomingMessage) {
    this.#req = req;
  }

  get url(): string {
    return this.#req.url ?? '/';
  }

  get method(): string {
    return this.#req.method ?? 'GET';
  }

  get remoteAddress(): string | undefined {
    return this.#req.socket.remoteAddress;
  }

  header(name: string): string | undefined {
    const value = this.#req.headers[name];
    return Array.isArray(value) ? value.join(', ') : value;
  }
}

/** The core's view of a Node request (for tests and other Node transports). */
export function nodeRequest(req: IncomingMessage): HttpRequest {
  return new NodeRequest(req);
}

/** Sends a JSON response that must not be cached (tickets, refusals). */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(text);
}

function replyTo(res: ServerResponse): HttpReply {
  return {
    json: (status, body, headers) => sendJson(res, status, body, headers),
    empty: (status, headers = {}) => res.writeHead(status, { 'Cache-Control': 'no-store', ...headers }).end(),
  };
}

/** Answers a refused upgrade with a real HTTP response on the raw socket, then closes it. */
function refuseUpgrade(socket: Duplex, status: number, headers: Readonly<Record<string, string>> = {}): void {
  if (socket.destroyed) return;
  const body = REFUSAL_BODY[status] ?? (STATUS_CODES[status] ?? 'error').toLowerCase();
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`,
    'Connection: close',
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  socket.once('finish', () => socket.destroy());
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

/**
 * An authenticated WebSocket gateway on Node's `http` and `ws`: ticket endpoint, upgrade checks,
 * auth flows, expiry policies, per-user and per-topic delivery. Attach it to any `http.Server`
 * (Express included).
 */
export class Gateway extends GatewayCore {
  readonly #wss: WebSocketServer;
  readonly #servers = new Set<Server>();
  readonly #heartbeat: ReturnType<typeof setInterval> | undefined;

  constructor(options: GatewayOptions) {
    super(options);
    const { maxPayload, heartbeatIntervalMs } = this.transport.options;
    this.#wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload,
      handleProtocols: () => SUBPROTOCOL,
      WebSocket: socketClass(new TextFrames()),
    });
    if (heartbeatIntervalMs > 0) {
      this.#heartbeat = setInterval(() => this.#beat(), heartbeatIntervalMs);
      this.#heartbeat.unref();
    }
  }

  /** Serves `POST /auth/ticket`, `GET /healthz` and `GET /livez`; anything else goes to `next`, or 404. */
  readonly handleRequest = (req: IncomingMessage, res: ServerResponse, next?: () => void): void => {
    if (this.transport.serve(new NodeRequest(req), replyTo(res))) return;
    if (next) return next();
    sendJson(res, 404, { error: REFUSAL_BODY[404] });
  };

  /** Hooks this gateway into `server`'s upgrades. */
  attach(server: Server): this {
    this.#servers.add(server);
    server.on('upgrade', this.handleUpgrade);
    return this;
  }

  /** Checks an upgrade request and either refuses it with an HTTP status or opens the WebSocket. */
  readonly handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // Errors on the raw socket before the upgrade completes must not crash the process.
    socket.on('error', destroySocket);
    const { transport } = this;
    if (!transport.accepting) return refuseUpgrade(socket, 503);
    const request = new NodeRequest(req);
    let decision: Admitted | Refused | Promise<Admitted | Refused>;
    try {
      decision = transport.admit(request);
    } catch (error) {
      return this.#upgradeFailed(socket, error);
    }
    if (isPromise(decision)) {
      decision.then(
        (settled) => this.#upgrade(req, request, socket, head, settled),
        (error: unknown) => this.#upgradeFailed(socket, error),
      );
    } else {
      this.#upgrade(req, request, socket, head, decision);
    }
  };

  /** Whatever throws while deciding an upgrade (e.g. an event listener) refuses it, never the process. */
  #upgradeFailed(socket: Duplex, error: unknown): void {
    this.transport.options.logger.error({ err: String(error) }, 'upgrade failed');
    refuseUpgrade(socket, 503);
  }

  #upgrade(req: IncomingMessage, request: NodeRequest, socket: Duplex, head: Buffer, decision: Admitted | Refused): void {
    if (decision.status !== 101) return refuseUpgrade(socket, decision.status, decision.headers);
    if (socket.destroyed || !this.transport.accepting) return refuseUpgrade(socket, 503);
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      const sessionSocket = ws as SessionSocket;
      sessionSocket.wire = socket;
      sessionSocket.session = this.transport.open(sessionSocket, request, decision);
      ws.on('message', onSocketMessage);
      ws.on('pong', onSocketPong);
      ws.on('error', onSocketError);
      ws.on('close', onSocketClose);
    });
  }

  #beat(): void {
    for (const socket of this.transport.sockets()) {
      const peer = socket as SessionSocket;
      if (!peer.alive) {
        this.transport.options.logger.info({ id: peer.session.id }, 'peer missed a heartbeat: terminated');
        peer.terminate();
        continue;
      }
      peer.alive = false;
      peer.ping();
    }
  }

  /** Stops accepting, closes every connection with 1001 and releases timers. */
  override async close(): Promise<void> {
    for (const server of this.#servers) server.off('upgrade', this.handleUpgrade);
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    await super.close();
    this.#wss.close();
  }
}

/** Creates a gateway; throws `ConfigError` naming the option at fault. */
export function createGateway(options: GatewayOptions): Gateway {
  return new Gateway(options);
}
