import { CloseCode, ProtocolError, SUBPROTOCOL } from '@authsocket/protocol';
import { describe, expect, it } from 'vitest';
import { type WebSocket, WebSocketServer } from 'ws';
import type { WebSocketConstructor } from '../src/index.js';
import { createClient, record, stateReached, until } from './helpers.js';

/**
 * A peer that completes the handshake and then sends one frame that breaks `authsocket.v1`: the real
 * gateway never does, so this is the only way to see what the client does with a broken server.
 */
async function brokenServer(frame: string | Buffer): Promise<{ url: string; closes: Array<{ code: number; reason: string }>; close: () => Promise<void> }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => SUBPROTOCOL });
  await new Promise((resolve) => wss.once('listening', resolve));
  const closes: Array<{ code: number; reason: string }> = [];
  const sockets = new Set<WebSocket>();
  wss.on('connection', (ws) => {
    sockets.add(ws);
    ws.on('error', () => {});
    ws.on('close', (code, reason) => closes.push({ code, reason: reason.toString() }));
    ws.send(frame);
  });
  return {
    url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}/`,
    closes,
    close: async () => {
      for (const ws of sockets) ws.terminate();
      await new Promise((resolve) => wss.close(resolve));
    },
  };
}

const BROKEN: Array<[string, string | Buffer, string]> = [
  ['an auth_ok without its user', '{"type":"auth_ok","expiresAt":1}', "'auth_ok' requires 'user'"],
  ['a frame that is not JSON', 'hello', 'frame is not valid JSON'],
  ['an unknown frame type', '{"type":"surprise"}', "unknown message type 'surprise'"],
  ['a frame with a prototype-polluting key', '{"type":"message","data":{"__proto__":{}}}', "frame contains the forbidden key '__proto__'"],
  ['a binary frame', Buffer.from([1, 2, 3]), 'binary frames are not part of authsocket.v1'],
];

describe('a server that breaks the protocol', () => {
  for (const [what, frame, reason] of BROKEN) {
    it(`gets the socket closed 4400 naming the problem when it sends ${what}, and no reconnect`, async () => {
      const server = await brokenServer(frame);
      try {
        const client = createClient({ url: server.url, token: 't' });
        const log = record(client);
        client.connect();
        await stateReached(client, 'closed');
        expect(log.errors).toHaveLength(1);
        expect(log.errors[0]).toBeInstanceOf(ProtocolError);
        expect(log.errors[0]?.message).toBe(reason);
        expect(client.getSnapshot()).toEqual({ state: 'closed', code: CloseCode.BadRequest, reason });
        await until(() => server.closes.length === 1, 'the server to see the close');
        expect(server.closes).toEqual([{ code: CloseCode.BadRequest, reason }]);
      } finally {
        await server.close();
      }
    });
  }
});

describe('WebSocket implementations', () => {
  it('accept both the browser WebSocket and the ws one as the WebSocket option (checked by tsc)', async () => {
    const { WebSocket: NodeWebSocket } = await import('ws');
    const node: WebSocketConstructor = NodeWebSocket;
    const browser: WebSocketConstructor | undefined = (globalThis as { WebSocket?: typeof globalThis.WebSocket }).WebSocket;
    expect(typeof node).toBe('function');
    expect(browser).toBeUndefined();
  });
});
