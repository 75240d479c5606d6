import { SUBPROTOCOL, type ServerMessage } from '@authsocket/protocol';
import { SignJWT } from 'jose';
import { ManualClock } from '../src/clock.js';
import type { Admitted } from '../src/core/admission.js';
import { GatewayCore } from '../src/core/gateway.js';
import { type ServerSocket, type SocketEvents, SocketState, type UpgradeRequest } from '../src/core/ports.js';
import type { GatewayOptions } from '../src/options.js';

// A transport made of plain objects: the core driven without TCP, ws or node:http.

export const SECRET = 'test-secret-that-is-at-least-32-bytes-long!';

/** An HS256 JWT for `sub`, issued at `now` (ms), expiring `expiresIn` seconds later. */
export function sign(sub: string, now: number, expiresIn = 300): Promise<string> {
  const iat = Math.floor(now / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt(iat)
    .setExpirationTime(iat + expiresIn)
    .sign(new TextEncoder().encode(SECRET));
}

/** An upgrade request offering `authsocket.v1` plus `protocols`, with these headers. */
export function upgradeRequest(url = '/', headers: Record<string, string> = {}, protocols: string[] = []): UpgradeRequest {
  const all: Record<string, string> = { 'sec-websocket-protocol': [SUBPROTOCOL, ...protocols].join(', '), ...headers };
  return { url, remoteAddress: '192.0.2.7', header: (name) => all[name] };
}

/** A socket that records what the core does to it; closing it reports `closed` on the next tick. */
export class MemorySocket implements ServerSocket {
  readyState: number = SocketState.Open;
  bufferedAmount = 0;
  paused = false;
  readonly sent: ServerMessage[] = [];
  closedWith: { code: number; reason: string } | undefined;
  events: SocketEvents | undefined;

  sendText(data: Uint8Array | string): void {
    this.sent.push(JSON.parse(data.toString()) as ServerMessage);
  }

  close(code: number, reason: string): void {
    if (this.readyState >= SocketState.Closing) return;
    this.readyState = SocketState.Closing;
    this.closedWith = { code, reason };
    setImmediate(() => this.#gone(code));
  }

  terminate(): void {
    this.#gone(1006);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  /** The client sends `frame`. */
  receive(frame: object): void {
    this.events?.received(JSON.stringify(frame), false);
  }

  /** The peer goes away with `code`. */
  #gone(code: number): void {
    if (this.readyState === SocketState.Closed) return;
    this.readyState = SocketState.Closed;
    this.events?.closed(code);
  }

  types(): string[] {
    return this.sent.map((frame) => frame.type);
  }
}

/** A core on a ManualClock, and a way to open in-memory connections on it. */
export function memoryGateway(options: Partial<GatewayOptions> = {}) {
  const clock = new ManualClock(Date.now());
  const gateway = new GatewayCore({ jwt: { secret: SECRET }, clock, heartbeatIntervalMs: 0, ...options });
  const { transport } = gateway;

  /** Admits `request` and, when admitted, opens a socket for it. */
  async function connect(request: UpgradeRequest = upgradeRequest()): Promise<MemorySocket> {
    const decision = await transport.admit(request);
    if (decision.status !== 101) throw new Error(`refused with ${decision.status}`);
    const socket = new MemorySocket();
    socket.events = transport.open(socket, request, decision as Admitted);
    return socket;
  }

  return { gateway, clock, transport, connect, token: (sub = 'alice', expiresIn = 300) => sign(sub, clock.now(), expiresIn) };
}

/** Waits (a bounded number of turns of the event loop) until `check` holds. */
export async function until(check: () => boolean, turns = 5_000): Promise<void> {
  for (let turn = 0; turn < turns; turn++) {
    if (check()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error('condition not reached');
}
