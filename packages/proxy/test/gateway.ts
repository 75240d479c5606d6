import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ServerMessage, SUBPROTOCOL } from '@authsocket/protocol';
import { createGateway, type Gateway, type GatewayOptions } from '@authsocket/server';
import { SignJWT } from 'jose';
import { WebSocket } from 'ws';

export const JWT_SECRET = 'jwt-secret-for-the-proxy-tests-32-bytes!';

/** A gateway on a real HTTP server on 127.0.0.1:0. */
export interface RunningGateway {
  readonly gateway: Gateway;
  readonly url: string;
  token(sub?: string, claims?: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

export async function startGateway(options: Partial<GatewayOptions>): Promise<RunningGateway> {
  const gateway = createGateway({ jwt: { secret: JWT_SECRET }, ...options });
  const server = http.createServer(gateway.handleRequest);
  gateway.attach(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const key = new TextEncoder().encode(JWT_SECRET);
  return {
    gateway,
    url: `ws://127.0.0.1:${port}/`,
    token: (sub = 'alice', claims = {}) =>
      new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('5m').sign(key),
    async close() {
      await gateway.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const WAIT_MS = 5_000;

/** A protocol client on a real `ws` socket: keeps every frame, waits for one with a deadline. */
export class Client {
  readonly frames: ServerMessage[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly #ws: WebSocket;
  #wake: Array<() => void> = [];

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()) as ServerMessage);
      for (const wake of this.#wake.splice(0)) wake();
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('close', () => {
      for (const wake of this.#wake.splice(0)) wake();
    });
  }

  static open(url: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, [SUBPROTOCOL]);
      const client = new Client(ws);
      ws.on('error', reject);
      ws.once('open', () => resolve(client));
    });
  }

  /** Opens and sends `auth`; does not wait for the answer. */
  static async auth(url: string, token: string): Promise<Client> {
    const client = await Client.open(url);
    client.send({ type: 'auth', token });
    return client;
  }

  get open(): boolean {
    return this.#ws.readyState === WebSocket.OPEN;
  }

  send(frame: unknown): void {
    this.#ws.send(JSON.stringify(frame));
  }

  /** The first frame matching `match`; throws when the socket closes first or after WAIT_MS. */
  async next<T extends ServerMessage['type']>(
    type: T,
    match: (frame: Extract<ServerMessage, { type: T }>) => boolean = () => true,
  ): Promise<Extract<ServerMessage, { type: T }>> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const found = this.frames.find((frame): frame is Extract<ServerMessage, { type: T }> => frame.type === type && match(frame as never));
      if (found) return found;
      if (this.#ws.readyState === WebSocket.CLOSED) throw new Error(`closed before a '${type}' frame`);
      if (Date.now() > deadline) throw new Error(`no '${type}' frame within ${WAIT_MS} ms`);
      await new Promise<void>((resolve) => {
        this.#wake.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  /** Waits until `count` frames of `type` have arrived (bounded, like `next`). */
  async nth<T extends ServerMessage['type']>(type: T, count: number): Promise<Extract<ServerMessage, { type: T }>> {
    await this.next(type, () => this.frames.filter((frame) => frame.type === type).length >= count);
    return this.frames.filter((frame): frame is Extract<ServerMessage, { type: T }> => frame.type === type)[count - 1] as Extract<ServerMessage, { type: T }>;
  }

  /** A ping round trip: the socket is open and the server still reads it. */
  async ping(id = `p${Math.random()}`): Promise<void> {
    this.send({ type: 'ping', id });
    await this.next('pong', (frame) => frame.id === id);
  }

  close(code = 1000): void {
    this.#ws.close(code);
  }

  /** Waits for the close, bounded. */
  async closedWithin(ms = WAIT_MS): Promise<{ code: number; reason: string }> {
    return Promise.race([
      this.closed,
      new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error(`not closed within ${ms} ms`)), ms)),
    ]);
  }
}
