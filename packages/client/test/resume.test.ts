import { CloseCode, RESUME_PROTOCOL_PREFIX } from '@authsocket/protocol';
import type { Connection } from '@authsocket/server';
import { describe, expect, it } from 'vitest';
import { createClient, gate, nextEvent, record, startServer, ticketProvider, until } from './helpers.js';

/** A wait that holds every reconnect until the test opens the gate. */
function heldWait() {
  const held = gate<void>();
  return { release: () => held.open(), wait: () => held.promise };
}

describe('resume', () => {
  it('sends the last stream position in auth after a drop and gets what it missed once, in order', async () => {
    const server = await startServer({ ticket: 'off' });
    let connection: Connection | undefined;
    server.gateway.on('authenticated', (e) => {
      connection = e.connection;
    });
    const reconnect = heldWait();
    const client = createClient({ url: server.wsUrl, getToken: () => server.token(), wait: reconnect.wait });
    const log = record(client);
    client.connect();
    const first = await nextEvent(client, 'authenticated');
    expect(first.streams).toEqual({ 'user:alice': { epoch: expect.any(String), offset: 0 } });
    for (let i = 0; i < 3; i++) await server.gateway.sendToUser('alice', i);
    await until(() => log.messages.length === 3, 'three messages');

    connection?.close(CloseCode.InternalError, 'drop');
    await until(() => client.state === 'reconnecting', 'the drop');
    // Sent while the client is away: kept in the user's stream history.
    for (let i = 3; i < 6; i++) expect(await server.gateway.sendToUser('alice', i)).toBe(0);
    const back = nextEvent(client, 'authenticated');
    reconnect.release();
    const resumed = await back;
    expect(resumed.streams).toEqual({ 'user:alice': { epoch: first.streams?.['user:alice']?.epoch, offset: 3, recovered: true } });
    await server.gateway.sendToUser('alice', 6);
    await until(() => log.messages.length === 7, 'seven messages');
    expect(log.messages.map((m) => [m.data, m.offset])).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => [i, i + 1]));
  });

  it('carries resume positions in the subprotocol for a socket authenticated by ticket', async () => {
    const server = await startServer({ ticket: 'required' });
    let connection: Connection | undefined;
    server.gateway.on('authenticated', (e) => {
      connection = e.connection;
    });
    const reconnect = heldWait();
    const client = createClient({ url: server.wsUrl, getTicket: ticketProvider(server).getTicket, wait: reconnect.wait });
    const log = record(client);
    client.connect();
    await client.topic('news').subscribe();
    await server.gateway.publish('news', 'n1');
    await server.gateway.sendToUser('alice', 'u1');
    await until(() => log.messages.length === 2, 'two messages');
    connection?.close(CloseCode.InternalError, 'drop');
    await until(() => client.state === 'reconnecting', 'the drop');
    await server.gateway.publish('news', 'n2');
    await server.gateway.sendToUser('alice', 'u2');
    const back = nextEvent(client, 'authenticated');
    reconnect.release();
    expect((await back).streams).toMatchObject({
      'user:alice': { offset: 1, recovered: true },
      'topic:news': { offset: 1, recovered: true },
    });
    await until(() => log.messages.length === 4, 'the missed messages');
    expect(log.messages.map((m) => m.data).sort()).toEqual(['n1', 'n2', 'u1', 'u2']);
    const offered = server.upgrades[1]?.protocols.find((p) => p.startsWith(RESUME_PROTOCOL_PREFIX)) ?? '';
    const resume: unknown = JSON.parse(Buffer.from(offered.slice(RESUME_PROTOCOL_PREFIX.length), 'base64url').toString());
    expect(resume).toEqual({
      'user:alice': { epoch: expect.any(String), offset: 1 },
      'topic:news': { epoch: expect.any(String), offset: 1 },
    });
  });

  it('reports recovered: false when the server lost its history, and carries on from the new position', async () => {
    const first = await startServer({ ticket: 'off' });
    const reconnect = heldWait();
    let current = first;
    const client = createClient({ url: first.wsUrl, getToken: () => current.token(), wait: reconnect.wait });
    const log = record(client);
    client.connect();
    await nextEvent(client, 'authenticated');
    await first.gateway.sendToUser('alice', 'old');
    await until(() => log.messages.length === 1, 'one message');
    await first.close();
    current = await startServer({ ticket: 'off' }, { port: first.port });
    await current.gateway.sendToUser('alice', 'sent before the client is back: not replayed, the epoch is new');
    const back = nextEvent(client, 'authenticated');
    reconnect.release();
    const resumed = await back;
    expect(resumed.streams?.['user:alice']).toEqual({ epoch: expect.any(String), offset: 1, recovered: false });
    await current.gateway.sendToUser('alice', 'new');
    await until(() => log.messages.length === 2, 'the next live message');
    expect(log.messages.map((m) => m.data)).toEqual(['old', 'new']);
    expect(log.messages[1]).toMatchObject({ offset: 2 });
  });
});
