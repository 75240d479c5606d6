import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { SUBPROTOCOL, type ServerMessage, TICKET_PROTOCOL_PREFIX } from '@authsocket/protocol';
import { type JWTPayload, SignJWT } from 'jose';
import { WebSocket } from 'ws';
import { createGateway, type Gateway, type GatewayOptions, ManualClock } from '../src/index.js';

export const SECRET = 'test-secret-that-is-at-least-32-bytes-long!';
const secretKey = new TextEncoder().encode(SECRET);

export interface TokenSpec {
  sub?: string;
  /** seconds from `now` */
  expiresIn?: number;
  now?: number;
  claims?: JWTPayload;
  key?: Uint8Array;
  alg?: string;
}

/** An HS256 JWT for `sub`, issued at `now` (ms), expiring `expiresIn` seconds later. */
export async function signToken({
  sub = 'alice',
  expiresIn = 300,
  now = Date.now(),
  claims = {},
  key = secretKey,
  alg = 'HS256',
}: TokenSpec = {}): Promise<string> {
  const iat = Math.floor(now / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg })
    .setSubject(sub)
    .setIssuedAt(iat)
    .setExpirationTime(iat + expiresIn)
    .sign(key);
}

export interface TestServer {
  readonly gateway: Gateway;
  readonly server: http.Server;
  readonly clock: ManualClock;
  readonly origin: string;
  readonly wsUrl: string;
  /** A JWT for `sub` on this server's clock. */
  token(sub?: string, spec?: TokenSpec): Promise<string>;
  ticket(sub?: string): Promise<string>;
  close(): Promise<void>;
}

/** Starts a gateway on 127.0.0.1:0 driven by a ManualClock; close it in afterEach. */
export async function startServer(options: Partial<GatewayOptions> = {}): Promise<TestServer> {
  const clock = new ManualClock(Date.now());
  const gateway = createGateway({ jwt: { secret: SECRET }, clock, ...options });
  const server = http.createServer(gateway.handleRequest);
  gateway.attach(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  const token = (sub = 'alice', spec: TokenSpec = {}) => signToken({ sub, now: clock.now(), ...spec });
  return {
    gateway,
    server,
    clock,
    origin,
    wsUrl: `ws://127.0.0.1:${port}/`,
    token,
    async ticket(sub = 'alice') {
      const response = await fetch(`${origin}/auth/ticket`, {
        method: 'POST',
        headers: { authorization: `Bearer ${await token(sub)}` },
      });
      if (response.status !== 200) throw new Error(`ticket endpoint answered ${response.status}`);
      return ((await response.json()) as { ticket: string }).ticket;
    },
    async close() {
      await gateway.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface Refusal {
  readonly status: number;
  readonly body: string;
  readonly headers: http.IncomingHttpHeaders;
}

/** A raw protocol client for tests: collects frames, exposes the close code. */
export class TestSocket {
  readonly ws: WebSocket;
  readonly frames: ServerMessage[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  #waiters: Array<() => void> = [];

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()) as ServerMessage);
      for (const wake of this.#waiters.splice(0)) wake();
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        for (const wake of this.#waiters.splice(0)) wake();
      }),
    );
  }

  /** Opens a socket offering `authsocket.v1` plus `extraProtocols`; rejects with the HTTP refusal. */
  static open(
    url: string,
    { protocols = [SUBPROTOCOL], headers = {} }: { protocols?: string[]; headers?: Record<string, string> } = {},
  ): Promise<TestSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, protocols, { headers });
      ws.on('error', () => {});
      const socket = new TestSocket(ws);
      ws.once('open', () => resolve(socket));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => {
          body += chunk.toString();
        });
        res.on('end', () => reject({ status: res.statusCode ?? 0, body, headers: res.headers } satisfies Refusal));
      });
    });
  }

  static withTicket(url: string, ticket: string): Promise<TestSocket> {
    return TestSocket.open(url, { protocols: [SUBPROTOCOL, `${TICKET_PROTOCOL_PREFIX}${ticket}`] });
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Waits for the first frame (after `from`) matching `type`; throws if the socket closes first. */
  async next<T extends ServerMessage['type']>(type: T, from = 0): Promise<Extract<ServerMessage, { type: T }>> {
    for (;;) {
      const found = this.frames.slice(from).find((frame) => frame.type === type);
      if (found) return found as Extract<ServerMessage, { type: T }>;
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error(`socket closed before a '${type}' frame`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Waits until `count` frames of `type` have arrived. */
  async collect<T extends ServerMessage['type']>(type: T, count: number): Promise<Extract<ServerMessage, { type: T }>[]> {
    for (;;) {
      const found = this.frames.filter((frame) => frame.type === type);
      if (found.length >= count) return found as Extract<ServerMessage, { type: T }>[];
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error(`socket closed after ${found.length} '${type}' frames`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Round-trips a ping, so every frame the server sent before it has arrived. */
  async settle(): Promise<void> {
    const id = `settle-${Math.random().toString(36).slice(2)}`;
    this.send({ type: 'ping', id });
    for (;;) {
      if (this.frames.some((frame) => frame.type === 'pong' && frame.id === id)) return;
      if (this.ws.readyState === WebSocket.CLOSED) return;
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Opens with first-message auth and waits for `auth_ok`. */
  static async authenticated(server: TestServer, sub = 'alice'): Promise<TestSocket> {
    const socket = await TestSocket.open(server.wsUrl);
    socket.send({ type: 'auth', token: await server.token(sub) });
    await socket.next('auth_ok');
    return socket;
  }

  close(): void {
    this.ws.close();
  }
}

/** Expects an upgrade to be refused and returns the refusal. */
export async function refusal(opening: Promise<TestSocket>): Promise<Refusal> {
  try {
    const socket = await opening;
    socket.close();
  } catch (error) {
    return error as Refusal;
  }
  throw new Error('expected the upgrade to be refused, but it succeeded');
}

/**
 * A bare TCP WebSocket peer that completes the handshake and then does only what the test says:
 * it never answers pings and reads only when resumed. For slow-consumer and half-open cases.
 */
export async function openRawSocket(target: TestServer, protocols = [SUBPROTOCOL]): Promise<net.Socket> {
  const { port } = target.server.address() as AddressInfo;
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  const request = [
    'GET / HTTP/1.1',
    `Host: 127.0.0.1:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
    'Sec-WebSocket-Version: 13',
    `Sec-WebSocket-Protocol: ${protocols.join(', ')}`,
  ];
  socket.write(`${request.join('\r\n')}\r\n\r\n`);
  const head = await new Promise<string>((resolve, reject) => {
    let received = '';
    const onData = (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (received.includes('\r\n\r\n')) {
        socket.off('data', onData);
        socket.pause();
        resolve(received);
      }
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error('closed during handshake')));
  });
  if (!head.startsWith('HTTP/1.1 101')) throw new Error(`handshake refused: ${head.split('\r\n')[0]}`);
  return socket;
}

/** One masked client text frame, as RFC 6455 requires of clients. */
export function clientTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = randomBytes(4);
  const length = payload.length;
  const header =
    length < 126
      ? Buffer.from([0x81, 0x80 | length])
      : Buffer.from([0x81, 0x80 | 126, length >> 8, length & 0xff]);
  const masked = Buffer.alloc(length);
  for (let i = 0; i < length; i++) masked[i] = (payload[i] as number) ^ (mask[i % 4] as number);
  return Buffer.concat([header, mask, masked]);
}
