// @vitest-environment jsdom
// react-use-websocket 4.13 itself, in React 19 under jsdom, against the real gateway: the helper's
// options are what an application passes. The WebSocket is `ws`'s (the browser API on Node): jsdom 29's
// own (undici's) fails to dispatch `open` under Vitest, its Event class not being Node's.
import { CloseCode, SUBPROTOCOL, TICKET_PROTOCOL_PREFIX } from '@authsocket/protocol';
import type { Connection } from '@authsocket/server';
import { cleanup, render } from '@testing-library/react';
import reactUseWebSocket from 'react-use-websocket';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket as NodeWebSocket } from 'ws';
import { authsocketOptions, type AuthsocketHookOptions, type AuthsocketOptionsInput } from '../src/react-use-websocket.js';
import { startServer, type TestServer, ticketProvider, until } from './helpers.js';

// jsdom's typed-array constructors replace Node's as globals, and the gateway (run from source here)
// checks `instanceof Uint8Array` on Node's bytes: put Node's back (the DOM side does not need jsdom's).
const NodeUint8Array = Object.getPrototypeOf(Buffer.prototype).constructor as Uint8ArrayConstructor;
if (globalThis.Uint8Array !== NodeUint8Array) globalThis.Uint8Array = NodeUint8Array;

globalThis.WebSocket = NodeWebSocket as unknown as typeof globalThis.WebSocket;

afterEach(() => cleanup());

// A CommonJS package: Node (and TypeScript under NodeNext) see `module.exports` as the default
// import, a bundler sees its `default` export.
const interop = reactUseWebSocket as unknown as { default?: typeof reactUseWebSocket.default };
const useWebSocket = typeof interop === 'function' ? (interop as typeof reactUseWebSocket.default) : (interop.default as typeof reactUseWebSocket.default);

type Frame = Record<string, unknown> & { type: string };

/** A component as an application writes it with react-use-websocket and the helper. */
function Feed({ options }: { options: AuthsocketHookOptions }) {
  const { readyState } = useWebSocket(options.getUrl, options);
  return <p>{readyState}</p>;
}

/** The helper's options with fast reconnects, every frame received and every stop recorded. */
function setup(input: Omit<AuthsocketOptionsInput, 'url'>, server: TestServer) {
  const frames: Frame[] = [];
  const stops: Array<{ code?: number; error?: unknown }> = [];
  const options = authsocketOptions({
    url: server.wsUrl,
    minReconnectDelayMs: 10,
    maxReconnectDelayMs: 50,
    onMessage: (event) => frames.push(JSON.parse(event.data as string) as Frame),
    onStop: (why) => stops.push(why),
    ...input,
  });
  render(<Feed options={options} />);
  const count = (type: string) => frames.filter((f) => f.type === type).length;
  return { options, frames, stops, count };
}

/** The connection the gateway authenticated last. */
function lastConnection(server: TestServer): () => Connection | undefined {
  let connection: Connection | undefined;
  server.gateway.on('authenticated', (e) => {
    connection = e.connection;
  });
  return () => connection;
}

describe('react-use-websocket with authsocketOptions()', () => {
  it('an upgrade that offers no subprotocol (every library default) is refused with HTTP 400', async () => {
    const server = await startServer();
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new NodeWebSocket(server.wsUrl);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => reject(new Error('opened without a subprotocol')));
      ws.on('error', () => undefined);
    });
    expect(status).toBe(400);
  });

  it('connects with a fresh ticket in the subprotocol, gets auth_ok and a push', async () => {
    const server = await startServer();
    const tickets = ticketProvider(server);
    const { frames, count } = setup({ getTicket: tickets.getTicket }, server);
    await until(() => count('auth_ok') === 1, 'auth_ok');
    expect(frames[0]).toMatchObject({ type: 'auth_ok', user: 'alice' });
    expect(server.upgrades).toHaveLength(1);
    const [offered, ticket] = server.upgrades[0]?.protocols ?? [];
    expect(offered).toBe(SUBPROTOCOL);
    expect(ticket?.startsWith(TICKET_PROTOCOL_PREFIX)).toBe(true);
    expect(server.upgrades[0]?.url).toBe('/');
    await server.gateway.sendToUser('alice', { hello: 1 });
    await until(() => count('message') === 1, 'the push');
    expect(frames.at(-1)).toMatchObject({ type: 'message', data: { hello: 1 }, stream: 'user:alice', offset: 1 });
    expect(tickets.calls()).toBe(1);
  });

  it('answers reauth_required in band with a fresh token: a second auth_ok, no reconnect', async () => {
    const server = await startServer({ reauthWindowMs: 30_000, reauthGraceMs: 10_000 });
    const tickets = ticketProvider(server);
    let tokens = 0;
    const { frames, count } = setup({ getTicket: tickets.getTicket, getToken: () => (tokens++, server.token('alice', 600)) }, server);
    await until(() => count('auth_ok') === 1, 'auth_ok');
    const firstExpiry = frames[0]?.expiresAt as number;
    server.clock.advance(300_000 - 30_000 + 1_000);
    await until(() => count('auth_ok') === 2, 'the in-band auth_ok');
    expect(count('reauth_required')).toBe(1);
    expect(tokens).toBe(1);
    expect(frames.at(-1)?.expiresAt as number).toBeGreaterThan(firstExpiry);
    expect(server.upgrades).toHaveLength(1);
    expect(tickets.calls()).toBe(1);
  });

  it('with tickets only, answers reauth_required by reconnecting at once with a fresh ticket and resuming', async () => {
    const server = await startServer({ reauthWindowMs: 30_000, reauthGraceMs: 10_000 });
    const tickets = ticketProvider(server);
    const { frames, count } = setup({ getTicket: tickets.getTicket }, server);
    await until(() => count('auth_ok') === 1, 'auth_ok');
    await server.gateway.sendToUser('alice', 'one');
    await until(() => count('message') === 1, 'the first push');
    server.clock.advance(300_000 - 30_000 + 1_000);
    await until(() => count('auth_ok') === 2, 'auth_ok after the reconnect');
    expect(tickets.calls()).toBe(2);
    expect(server.upgrades).toHaveLength(2);
    const resume = server.upgrades[1]?.protocols.find((p) => p.startsWith('resume.'));
    expect(resume).toBeDefined();
    expect(frames.at(-1)).toMatchObject({ type: 'auth_ok', streams: { 'user:alice': { recovered: true, offset: 1 } } });
    expect(server.closes).toEqual([CloseCode.Normal]);
  });

  it('a 4401 gets one refresh: fresh credentials once, then it stops', async () => {
    const server = await startServer({ ticket: 'off' });
    let tokens = 0;
    const { stops } = setup({ getToken: () => (tokens++, server.badToken('alice')) }, server);
    await until(() => stops.length === 1, 'the stop');
    expect(stops).toEqual([{ code: CloseCode.Unauthorized }]);
    expect(server.closes).toEqual([CloseCode.Unauthorized, CloseCode.Unauthorized]);
    expect(tokens).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(server.upgrades).toHaveLength(2);
  });

  it('a 4401 answered by a good token on the refresh is open again, at once', async () => {
    const server = await startServer({ ticket: 'off' });
    let tokens = 0;
    const { count, stops, frames } = setup({ getToken: () => (++tokens === 1 ? server.badToken('alice') : server.token('alice')) }, server);
    await until(() => count('auth_ok') === 1, 'auth_ok after the refresh');
    expect(frames.at(-1)).toMatchObject({ type: 'auth_ok', user: 'alice' });
    expect(server.closes).toEqual([CloseCode.Unauthorized]);
    expect(tokens).toBe(2);
    expect(stops).toEqual([]);
  });

  it('a 1001 reconnects with backoff and a fresh ticket every time, resuming what it missed', async () => {
    const server = await startServer();
    const tickets = ticketProvider(server);
    const connection = lastConnection(server);
    const delays: number[] = [];
    const { frames, count, options } = setup({ getTicket: tickets.getTicket, random: () => 0.5 }, server);
    const interval = options.reconnectInterval;
    Object.assign(options, { reconnectInterval: (attempt: number) => (delays.push(interval(attempt)), delays.at(-1)) });
    for (let round = 1; round <= 3; round++) {
      await until(() => count('auth_ok') === round, `auth_ok ${round}`);
      connection()?.close(CloseCode.GoingAway, 'server shutting down');
      await server.gateway.sendToUser('alice', `missed ${round}`);
    }
    await until(() => count('auth_ok') === 4, 'auth_ok 4');
    await until(() => count('message') === 3, 'the three missed messages');
    expect(frames.filter((f) => f.type === 'message').map((f) => [f.data, f.offset])).toEqual([
      ['missed 1', 1],
      ['missed 2', 2],
      ['missed 3', 3],
    ]);
    expect(tickets.calls()).toBe(4);
    const used = server.upgrades.map((u) => u.protocols.find((p) => p.startsWith(TICKET_PROTOCOL_PREFIX)));
    expect(new Set(used).size).toBe(4);
    // Backoff, never zero: full jitter between 10 ms and 20 ms for the first retry after an open.
    expect(delays).toEqual([15, 15, 15]);
    expect(server.closes).toEqual([CloseCode.GoingAway, CloseCode.GoingAway, CloseCode.GoingAway]);
  });

  it('does not reconnect after a stop code (4403), and says so once', async () => {
    const server = await startServer();
    const tickets = ticketProvider(server);
    const connection = lastConnection(server);
    const { count, stops } = setup({ getTicket: tickets.getTicket }, server);
    await until(() => count('auth_ok') === 1, 'auth_ok');
    connection()?.close(CloseCode.Forbidden, 'revoked');
    await until(() => stops.length === 1, 'the stop');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(stops).toEqual([{ code: CloseCode.Forbidden }]);
    expect(tickets.calls()).toBe(1);
    expect(server.upgrades).toHaveLength(1);
  });
});
