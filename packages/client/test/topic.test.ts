import { CloseCode } from '@authsocket/protocol';
import type { Connection } from '@authsocket/server';
import { describe, expect, it } from 'vitest';
import { CancelledError, RequestRefusedError, type TopicState } from '../src/index.js';
import { createClient, heldRefresh, nextEvent, record, recordingWebSocket, startServer, stateReached, until } from './helpers.js';

/** A server that remembers the live connection, so a test can drop it. */
async function droppableServer(options: Parameters<typeof startServer>[0] = {}) {
  const server = await startServer({ ticket: 'off', ...options });
  let connection: Connection | undefined;
  server.gateway.on('authenticated', (e) => {
    connection = e.connection;
  });
  return { server, drop: () => connection?.close(CloseCode.InternalError, 'drop') };
}

describe('Topic', () => {
  it('is one object per name, and walks unsubscribed -> subscribing -> subscribed', async () => {
    const { server } = await droppableServer();
    const client = createClient({ url: server.wsUrl, token: await server.token() });
    const room = client.topic('room');
    expect(client.topic('room')).toBe(room);
    expect(room.name).toBe('room');
    const states: TopicState[] = [room.state];
    room.on('state', ({ newState }) => states.push(newState));
    const joined = room.subscribe();
    expect(room.state).toBe('subscribing');
    client.connect();
    await joined;
    expect(states).toEqual(['unsubscribed', 'subscribing', 'subscribed']);
    await room.unsubscribe();
    expect(states.at(-1)).toBe('unsubscribed');
  });

  it('emits only its own messages, and stops once left', async () => {
    const { server } = await droppableServer();
    const client = createClient({ url: server.wsUrl, token: await server.token() });
    client.connect();
    const room = client.topic('room');
    const other = client.topic('other');
    const seen: unknown[] = [];
    room.on('message', (message) => seen.push(message.data));
    await Promise.all([room.subscribe(), other.subscribe()]);
    const log = record(client);
    await server.gateway.publish('other', 'not for room');
    await server.gateway.publish('room', 'for room');
    await until(() => log.messages.length === 2, 'both publications');
    expect(seen).toEqual(['for room']);
    expect(room.positions).toEqual({ 'topic:room': { epoch: expect.any(String), offset: 1 } });
    await room.unsubscribe();
    expect(room.positions).toEqual({});
    expect(await server.gateway.publish('room', 'after leaving')).toBe(0);
  });

  it('resubscribes on every new socket without a `since`, so the server replays nothing twice', async () => {
    const { server, drop } = await droppableServer();
    const frames = recordingWebSocket();
    const client = createClient({ url: server.wsUrl, getToken: () => server.token(), WebSocket: frames.WebSocket });
    const log = record(client);
    const news = client.topic('news');
    const states: TopicState[] = [];
    news.on('state', ({ newState }) => states.push(newState));
    client.connect();
    await news.subscribe();
    await server.gateway.publish('news', 'n1');
    await until(() => log.messages.length === 1, 'the first publication');
    const back = nextEvent(client, 'authenticated');
    drop();
    await back;
    await until(() => news.state === 'subscribed', 'the resubscription');
    expect(states).toEqual(['subscribing', 'subscribed', 'subscribing', 'subscribed']);
    const second = frames.sockets[1] ?? [];
    expect(second[0]).toMatchObject({ type: 'auth', resume: { 'topic:news': { epoch: expect.any(String), offset: 1 } } });
    const resubscribe = second.find((frame) => frame.type === 'subscribe');
    expect(resubscribe).toEqual({ type: 'subscribe', topic: 'news', id: expect.any(String) });
    await server.gateway.publish('news', 'n2');
    await until(() => log.messages.length === 2, 'the next publication');
    expect(log.messages.map((m) => [m.data, m.offset])).toEqual([
      ['n1', 1],
      ['n2', 2],
    ]);
  });

  it('does not resume a topic left before the server confirmed it', async () => {
    const { server, drop } = await droppableServer();
    const frames = recordingWebSocket();
    const client = createClient({ url: server.wsUrl, getToken: () => server.token(), WebSocket: frames.WebSocket });
    client.connect();
    await stateReached(client, 'open');
    const news = client.topic('news');
    const joined = news.subscribe().catch((error: unknown) => error);
    // Left while the subscribe is still on its way: the server's ack comes after this.
    await news.unsubscribe();
    expect(await joined).toBeInstanceOf(CancelledError);
    expect(news.state).toBe('unsubscribed');
    const back = nextEvent(client, 'authenticated');
    drop();
    await back;
    const auth = frames.sockets[1]?.[0] as { type: string; resume?: Record<string, unknown> };
    expect(auth.type).toBe('auth');
    expect(Object.keys(auth.resume ?? {})).toEqual(['user:alice']);
    expect(frames.sockets[1]?.some((frame) => frame.type === 'subscribe')).toBe(false);
    expect(await server.gateway.publish('news', 'nobody')).toBe(0);
  });

  it('is refused to unsubscribed with RequestRefusedError, and logout() drops a pending one with CancelledError', async () => {
    const { server } = await droppableServer({ authorize: (_user, _action, topic) => topic !== 'secret' });
    const client = createClient({ url: server.wsUrl, token: await server.token() });
    const secret = client.topic('secret');
    const room = client.topic('room');
    client.connect();
    await expect(secret.subscribe()).rejects.toThrow(RequestRefusedError);
    expect(secret.state).toBe('unsubscribed');
    await room.subscribe();
    await client.logout();
    expect(room.state).toBe('unsubscribed');
    const late = room.subscribe();
    expect(room.state).toBe('subscribing');
    client.close();
    await expect(late).rejects.toThrow('client closed');
    await expect(room.subscribe()).rejects.toThrow('client is closed');
  });

  it('confirms a subscribed topic at once while the token is being refreshed in band', async () => {
    const { server } = await droppableServer({ reauthWindowMs: 30_000 });
    const tokens = heldRefresh(server);
    const client = createClient({ url: server.wsUrl, getToken: tokens.getToken });
    client.connect();
    const room = client.topic('room');
    await room.subscribe();
    server.clock.advance(31_000);
    await stateReached(client, 'reauthenticating');
    await room.subscribe();
    expect(room.state).toBe('subscribed');
    tokens.release();
    await stateReached(client, 'open');
  });
});
