import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { createGateway, type Gateway, type GatewayOptions, ManualClock } from '@authsocket/server';
import { cleanup } from '@testing-library/react';
import { SignJWT } from 'jose';
import { afterEach } from 'vitest';

// Vitest's jsdom environment installs jsdom's typed-array constructors as globals while TextEncoder
// and Buffer stay Node's, so the gateway (run from source in this context) would see Node's bytes fail
// its `instanceof Uint8Array` checks. Put Node's constructor back: the DOM side does not need jsdom's.
const NodeUint8Array = Object.getPrototypeOf(Buffer.prototype).constructor as Uint8ArrayConstructor;
if (globalThis.Uint8Array !== NodeUint8Array) globalThis.Uint8Array = NodeUint8Array;

export const SECRET = 'react-tests-secret-of-at-least-32-bytes!!!';
const KEY = new TextEncoder().encode(SECRET);

/** Everything a test started, closed after it (after React has unmounted what it rendered). */
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  cleanup();
  for (const step of cleanups.splice(0).reverse()) await step();
});

export interface TestServer {
  readonly gateway: Gateway;
  readonly wsUrl: string;
  /** Data of every `message` the application received, with its sender, in order. */
  readonly received: Array<{ user: string; data: unknown }>;
  /** Upgrade requests that reached the HTTP server. */
  readonly upgrades: number;
  /** A JWT for `sub`, valid five minutes on the server's clock. */
  token(sub?: string): Promise<string>;
  /** Upgrades wait here until `releaseUpgrades()` when started with `holdUpgrades`. */
  readonly heldUpgrades: number;
  releaseUpgrades(): void;
}

/**
 * The real gateway on 127.0.0.1:0. Its clock is a ManualClock, so the server side starts no real
 * timer a test could mistake for the client's. With `holdUpgrades`, upgrade requests are parked until
 * `releaseUpgrades()`, to catch a client in the middle of its handshake.
 */
export async function startServer(options: Partial<GatewayOptions> & { holdUpgrades?: boolean } = {}): Promise<TestServer> {
  const { holdUpgrades = false, ...gatewayOptions } = options;
  const clock = new ManualClock(Date.now());
  const received: Array<{ user: string; data: unknown }> = [];
  const gateway = createGateway({
    jwt: { secret: SECRET },
    clock,
    heartbeatIntervalMs: 0,
    ...gatewayOptions,
    onMessage: (event) => {
      received.push({ user: event.user, data: event.data });
    },
  });
  const server = http.createServer(gateway.handleRequest);
  let upgrades = 0;
  let holding = holdUpgrades;
  const held: Array<() => void> = [];
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    upgrades++;
    if (holding) held.push(() => gateway.handleUpgrade(req, socket, head));
    else gateway.handleUpgrade(req, socket, head);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  cleanups.push(async () => {
    await gateway.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    gateway,
    wsUrl: `ws://127.0.0.1:${port}/`,
    received,
    get upgrades() {
      return upgrades;
    },
    get heldUpgrades() {
      return held.length;
    },
    releaseUpgrades() {
      holding = false;
      for (const upgrade of held.splice(0)) upgrade();
    },
    token: (sub = 'alice') => {
      const iat = Math.floor(clock.now() / 1000);
      return new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt(iat).setExpirationTime(iat + 300).sign(KEY);
    },
  };
}

/** Runs `step` after the current test, after React cleanup. */
export function onCleanup(step: () => Promise<void> | void): void {
  cleanups.push(step);
}

/** Polls `condition` every few ms until it holds; throws after `timeoutMs`. */
export async function until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export function tick(ms = 50): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Records every `setTimeout` started from now on that has neither fired nor been cleared, by delay,
 * until `restore()` (called after the test at the latest). The client looks timers up as globals,
 * so its reconnect waits are seen.
 */
export function trackTimers(): { live(): number[]; restore(): void } {
  const realSetTimeout = globalThis.setTimeout;
  const realClearTimeout = globalThis.clearTimeout;
  const live = new Map<unknown, number>();
  const tracked = (callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]): unknown => {
    const handle: unknown = realSetTimeout(() => {
      live.delete(handle);
      callback(...args);
    }, ms);
    live.set(handle, ms ?? 0);
    return handle;
  };
  globalThis.setTimeout = tracked as typeof setTimeout;
  globalThis.clearTimeout = ((handle: Parameters<typeof clearTimeout>[0]) => {
    live.delete(handle);
    realClearTimeout(handle);
  }) as typeof clearTimeout;
  let restored = false;
  const restore = (): void => {
    if (restored) return;
    restored = true;
    globalThis.setTimeout = realSetTimeout;
    globalThis.clearTimeout = realClearTimeout;
  };
  cleanups.push(restore);
  return { live: () => [...live.values()], restore };
}
