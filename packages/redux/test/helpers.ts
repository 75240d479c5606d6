import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type AuthMethod, createGateway, type Gateway, type GatewayOptions, ManualClock } from '@authsocket/server';
import { SignJWT } from 'jose';
import { afterEach } from 'vitest';

export const SECRET = 'redux-tests-secret-of-at-least-32-bytes!!';
const KEY = new TextEncoder().encode(SECRET);
export const PASSWORD = 'correct horse battery staple';

/** Everything a test started, closed after it whatever its outcome. */
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Runs `cleanup` after the current test. */
export function onCleanup(cleanup: () => Promise<void> | void): void {
  cleanups.push(cleanup);
}

export interface TestServer {
  readonly gateway: Gateway;
  readonly clock: ManualClock;
  /** `http://127.0.0.1:<port>`: `POST /login` and the gateway's HTTP endpoints. */
  readonly origin: string;
  readonly wsUrl: string;
  /** Every `message` the application received: who sent it and its data, in order. */
  readonly received: Array<{ user: string; data: unknown }>;
  /** Every authentication the gateway saw (its `authenticated` event). */
  readonly authentications: Array<{ user: string; method: AuthMethod }>;
  /** Every upgrade request that reached the HTTP server. */
  readonly upgrades: number;
  /** A JWT for `sub` valid `expiresIn` seconds on the server's clock. */
  token(sub?: string, expiresIn?: number): Promise<string>;
}

/**
 * The real gateway on 127.0.0.1:0 behind an HTTP server with a tiny `POST /login` ({username,
 * password} -> {token}), as an application's API would have. Closed after the test.
 */
export async function startServer(options: Partial<GatewayOptions> = {}): Promise<TestServer> {
  const clock = new ManualClock(Date.now());
  const received: Array<{ user: string; data: unknown }> = [];
  const authentications: Array<{ user: string; method: AuthMethod }> = [];
  const gateway = createGateway({
    jwt: { secret: SECRET },
    clock,
    ...options,
    onMessage: (event) => {
      received.push({ user: event.user, data: event.data });
      return options.onMessage?.(event);
    },
  });
  gateway.on('authenticated', ({ connection, method }) => {
    if (connection.user !== undefined) authentications.push({ user: connection.user, method });
  });
  const token = (sub = 'alice', expiresIn = 300): Promise<string> => {
    const iat = Math.floor(clock.now() / 1000);
    return new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt(iat).setExpirationTime(iat + expiresIn).sign(KEY);
  };
  const server = http.createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/login') {
      void login(req, res, token);
      return;
    }
    gateway.handleRequest(req, res);
  });
  let upgrades = 0;
  server.on('upgrade', () => {
    upgrades++;
  });
  gateway.attach(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  onCleanup(async () => {
    await gateway.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    gateway,
    clock,
    origin: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/`,
    received,
    authentications,
    get upgrades() {
      return upgrades;
    },
    token,
  };
}

async function login(req: http.IncomingMessage, res: http.ServerResponse, token: (sub: string) => Promise<string>): Promise<void> {
  let body = '';
  for await (const chunk of req) body += String(chunk);
  let credentials: { username?: unknown; password?: unknown };
  try {
    credentials = JSON.parse(body) as typeof credentials;
  } catch {
    credentials = {};
  }
  if (typeof credentials.username !== 'string' || credentials.password !== PASSWORD) {
    res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'unauthorized' }));
    return;
  }
  const jwt = await token(credentials.username);
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify({ token: jwt }));
}

/** `POST /login` as the app's API layer does it; resolves to the JWT. */
export async function httpLogin(origin: string, username: string, password = PASSWORD): Promise<string> {
  const response = await fetch(`${origin}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  if (response.status !== 200) throw new Error(`login answered ${response.status}`);
  return ((await response.json()) as { token: string }).token;
}

/** Polls `condition` every few ms until it holds; throws after `timeoutMs`. */
export async function until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Lets pending socket events and microtasks run. */
export function tick(ms = 50): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
