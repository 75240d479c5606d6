import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createGateway, type Gateway, type GatewayOptions, ManualClock, type MessageEvent } from '@authsocket/server';
import { SignJWT } from 'jose';
import { afterEach } from 'vitest';
import { WebSocket } from 'ws';
import {
  AuthSocket,
  type AuthSocketEvents,
  type AuthSocketOptions,
  type ConnectionState,
  fetchTicket,
  type InboundMessage,
  type StateChange,
  type WebSocketConstructor,
} from '../src/index.js';

export const SECRET = 'client-tests-secret-of-at-least-32-bytes!';
const KEY = new TextEncoder().encode(SECRET);
const WRONG_KEY = new TextEncoder().encode('not-the-servers-secret-but-32-bytes-long!!');

/** Everything a test started, closed after it whatever its outcome. */
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

export interface Upgrade {
  readonly url: string;
  readonly protocols: string[];
}

export interface TestServer {
  readonly gateway: Gateway;
  readonly server: http.Server;
  readonly clock: ManualClock;
  readonly origin: string;
  readonly wsUrl: string;
  readonly port: number;
  /** Every upgrade request the HTTP server saw, as the client sent it. */
  readonly upgrades: Upgrade[];
  /** Codes of every connection the gateway saw close. */
  readonly closes: number[];
  /** Data of every `message` the application received, in order. */
  readonly received: unknown[];
  /** A JWT for `sub` valid `expiresIn` seconds on this server's clock. */
  token(sub?: string, expiresIn?: number): Promise<string>;
  /** A JWT the server refuses (signed with another key). */
  badToken(sub?: string): Promise<string>;
  close(): Promise<void>;
}

export interface ServeOptions {
  /** Port to listen on (to restart a server where it was); default any free one. */
  readonly port?: number;
  /** Static files served beside the gateway's own routes, by path. */
  readonly files?: Readonly<Record<string, { readonly type: string; readonly body: string }>>;
}

/** Starts the real gateway on 127.0.0.1 driven by a ManualClock; closed after the test. */
export async function startServer(options: Partial<GatewayOptions> = {}, { port = 0, files = {} }: ServeOptions = {}): Promise<TestServer> {
  const clock = new ManualClock(Date.now());
  const received: unknown[] = [];
  const { handler, onMessage: appOnMessage } = options;
  const onMessage = handler ? handler.onMessage?.bind(handler) : appOnMessage;
  const recording = (event: MessageEvent) => {
    received.push(event.data);
    return onMessage?.(event);
  };
  const gateway = createGateway({
    jwt: { secret: SECRET },
    clock,
    ...options,
    ...(handler ? { handler: { ...handler, onMessage: recording } } : { onMessage: recording }),
  });
  const closes: number[] = [];
  gateway.on('close', ({ code }) => closes.push(code));
  const server = http.createServer((req, res) => {
    const file = Object.hasOwn(files, req.url ?? '') ? files[req.url ?? ''] : undefined;
    if (!file) return gateway.handleRequest(req, res);
    res.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-store' }).end(file.body);
  });
  const upgrades: Upgrade[] = [];
  server.on('upgrade', (req: http.IncomingMessage) => {
    const protocols = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    upgrades.push({ url: req.url ?? '', protocols });
  });
  gateway.attach(server);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const address = server.address() as AddressInfo;
  let closed = false;
  const sign = (key: Uint8Array, sub: string, expiresIn: number) => {
    const iat = Math.floor(clock.now() / 1000);
    return new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt(iat).setExpirationTime(iat + expiresIn).sign(key);
  };
  const handle: TestServer = {
    gateway,
    server,
    clock,
    origin: `http://127.0.0.1:${address.port}`,
    wsUrl: `ws://127.0.0.1:${address.port}/`,
    port: address.port,
    upgrades,
    closes,
    received,
    token: (sub = 'alice', expiresIn = 300) => sign(KEY, sub, expiresIn),
    badToken: (sub = 'alice') => sign(WRONG_KEY, sub, 300),
    async close() {
      if (closed) return;
      closed = true;
      await gateway.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  cleanups.push(() => handle.close());
  return handle;
}

/** A wait that does not sleep, recording every delay it was asked for. */
export function recordingWait(): { delays: number[]; wait: (ms: number) => Promise<void> } {
  const delays: number[] = [];
  return {
    delays,
    wait: async (ms) => {
      delays.push(ms);
      // A macrotask, so a reconnect loop against a dead port cannot starve the event loop.
      await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

/** A Node client on `ws` with fast, recorded reconnects; closed after the test. */
export function createClient(options: Partial<AuthSocketOptions> & { url: string }): AuthSocket {
  const client = new AuthSocket({
    WebSocket,
    minReconnectDelayMs: 10,
    maxReconnectDelayMs: 100,
    wait: recordingWait().wait,
    ...options,
  });
  cleanups.push(() => client.close());
  return client;
}

/** A `getTicket` exchanging a token from `server` at its ticket endpoint, counting calls. */
export function ticketProvider(server: TestServer, sub = 'alice'): { calls: () => number; getTicket: () => Promise<string> } {
  let calls = 0;
  return {
    calls: () => calls,
    getTicket: async () => {
      calls++;
      return (await fetchTicket(server.origin, await server.token(sub))).ticket;
    },
  };
}

/** Records every event the client emits. */
export function record(client: AuthSocket): {
  states: StateChange[];
  messages: InboundMessage[];
  errors: Error[];
  events: Array<{ [K in keyof AuthSocketEvents]: [K, AuthSocketEvents[K]] }[keyof AuthSocketEvents]>;
} {
  const log = {
    states: [] as StateChange[],
    messages: [] as InboundMessage[],
    errors: [] as Error[],
    events: [] as Array<{ [K in keyof AuthSocketEvents]: [K, AuthSocketEvents[K]] }[keyof AuthSocketEvents]>,
  };
  const names: Array<keyof AuthSocketEvents> = ['open', 'authenticated', 'message', 'reauthRequired', 'state', 'close', 'error'];
  for (const name of names) {
    client.on(name, (payload: unknown) => {
      log.events.push([name, payload] as never);
      if (name === 'state') log.states.push(payload as StateChange);
      if (name === 'message') log.messages.push(payload as InboundMessage);
      if (name === 'error') log.errors.push(payload as Error);
    });
  }
  return log;
}

/** Resolves with the next `event` whose payload passes `accept`. */
export function nextEvent<K extends keyof AuthSocketEvents>(
  client: AuthSocket,
  event: K,
  accept: (payload: AuthSocketEvents[K]) => boolean = () => true,
): Promise<AuthSocketEvents[K]> {
  return new Promise((resolve) => {
    const off = client.on(event, (payload) => {
      if (!accept(payload)) return;
      off();
      resolve(payload);
    });
  });
}

/** Resolves once the client is in `state` (at once if it already is). */
export function stateReached(client: AuthSocket, state: ConnectionState): Promise<void> {
  if (client.state === state) return Promise.resolve();
  return nextEvent(client, 'state', (change) => change.newState === state).then(() => undefined);
}

/** Polls `condition` every few ms until it holds; throws after `timeoutMs`. */
export async function until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A promise and the function that resolves it, for gating providers. */
export function gate<T>(): { promise: Promise<T>; open: (value: T) => void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** A `ws` WebSocket that records the frames the client writes, one list per socket, in order. */
export function recordingWebSocket(): { WebSocket: WebSocketConstructor; sockets: Array<Array<Record<string, unknown>>> } {
  const sockets: Array<Array<Record<string, unknown>>> = [];
  class Recording extends WebSocket {
    readonly #frames: Array<Record<string, unknown>> = [];

    constructor(url: string, protocols: string[]) {
      super(url, protocols);
      sockets.push(this.#frames);
    }

    override send(data: string): void {
      this.#frames.push(JSON.parse(data) as Record<string, unknown>);
      super.send(data);
    }
  }
  return { WebSocket: Recording, sockets };
}

/** A `getToken` whose first token comes at once and every later one waits for `release()`, counting calls. */
export function heldRefresh(server: TestServer, sub = 'alice', expiresIn = 60): { getToken: () => Promise<string>; calls: () => number; release: () => void } {
  const held = gate<void>();
  let calls = 0;
  return {
    calls: () => calls,
    release: () => held.open(),
    getToken: async () => {
      if (++calls > 1) await held.promise;
      return server.token(sub, expiresIn);
    },
  };
}
