// @hyper-fetch/sockets 8.2.4 itself, with the connector over AuthSocket, against the real gateway.
import { CloseCode, TICKET_PROTOCOL_PREFIX } from '@authsocket/protocol';
import type { Connection } from '@authsocket/server';
import { Socket, SocketAdapter } from '@hyper-fetch/sockets';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { AuthSocket } from '../src/index.js';
import { authsocketConnector, type AuthsocketConnectorOptions } from '../src/hyper-fetch.js';
import { startServer, type TestServer, ticketProvider, until } from './helpers.js';

/** A Hyper-fetch Socket as an application creates it, with the connector; closed after the test by the helpers' server close. */
function hyperSocket(server: TestServer, options: AuthsocketConnectorOptions) {
  let client: AuthSocket | undefined;
  const connector = authsocketConnector({
    WebSocket,
    minReconnectDelayMs: 10,
    maxReconnectDelayMs: 50,
    ...options,
    onClient: (c) => {
      client = c;
    },
  });
  const socket = new Socket({ url: server.wsUrl, adapter: () => new SocketAdapter<undefined, undefined, undefined, undefined, Record<string, string>>({ name: 'authsocket' }).setConnector(connector) });
  const connected: number[] = [];
  socket.onConnected(() => connected.push(Date.now()));
  return { socket, connected, client: () => client as AuthSocket };
}

const tickets = (server: TestServer) => server.upgrades.map((u) => u.protocols.find((p) => p.startsWith(TICKET_PROTOCOL_PREFIX)));

describe('@hyper-fetch/sockets with authsocketConnector()', () => {
  it('connects with a ticket, delivers topic and user messages to listeners, sends emits to the application', async () => {
    const server = await startServer();
    const provider = ticketProvider(server);
    const { socket, connected, client } = hyperSocket(server, { getTicket: provider.getTicket });
    const room: unknown[] = [];
    const direct: unknown[] = [];
    socket.createListener<{ text: string }>()({ topic: 'room' }).listen(({ data }) => room.push(data));
    socket.createListener<unknown>()({ topic: 'notice' }).listen(({ data }) => direct.push(data));
    await until(() => connected.length === 1 && client().topic('room').state === 'subscribed', 'connected and subscribed');
    expect(socket.adapter.connected).toBe(true);
    await server.gateway.publish('room', { text: 'hi' });
    await server.gateway.sendToUser('alice', { topic: 'notice', data: 'for alice' });
    await until(() => room.length === 1 && direct.length === 1, 'both messages');
    expect(room).toEqual([{ text: 'hi' }]);
    expect(direct).toEqual(['for alice']);
    socket.createEmitter<{ text: string }>()({ topic: 'chat' }).emit({ payload: { text: 'hello' } });
    await until(() => server.received.length === 1, 'the emit');
    expect(server.received).toEqual([{ topic: 'chat', data: { text: 'hello' } }]);
    expect(provider.calls()).toBe(1);
    client().close();
  });

  it('socket.reconnect() (as after setQueryParams) uses a fresh ticket, never the spent one', async () => {
    const server = await startServer();
    const provider = ticketProvider(server);
    const { socket, connected, client } = hyperSocket(server, { getTicket: provider.getTicket });
    await until(() => connected.length === 1, 'connected');
    socket.setQueryParams({ ticket: 'spent' });
    await socket.reconnect();
    await until(() => connected.length === 2, 'connected again');
    expect(provider.calls()).toBe(2);
    expect(server.upgrades).toHaveLength(2);
    expect(new Set(tickets(server)).size).toBe(2);
    expect(server.upgrades.every((u) => !u.url.includes('ticket='))).toBe(true);
    client().close();
  });

  it('a 1001 reconnects by itself with a fresh ticket each time; Hyper-fetch sees each drop and return', async () => {
    const server = await startServer();
    const provider = ticketProvider(server);
    let connection: Connection | undefined;
    server.gateway.on('authenticated', (e) => {
      connection = e.connection;
    });
    const { socket, connected, client } = hyperSocket(server, { getTicket: provider.getTicket });
    const disconnected: number[] = [];
    socket.onDisconnected(() => disconnected.push(Date.now()));
    for (let round = 1; round <= 3; round++) {
      await until(() => connected.length === round, `connected ${round}`);
      connection?.close(CloseCode.GoingAway, 'server shutting down');
    }
    await until(() => connected.length === 4, 'connected 4');
    expect(disconnected).toHaveLength(3);
    expect(provider.calls()).toBe(4);
    expect(new Set(tickets(server)).size).toBe(4);
    client().close();
  });
});
