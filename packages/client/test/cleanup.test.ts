import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { CloseCode } from '@authsocket/protocol';
import type { Connection } from '@authsocket/server';
import { describe, expect, it } from 'vitest';
import { timerWait } from '../src/backoff.js';
import { createClient, gate, nextEvent, record, startServer, until } from './helpers.js';

/** How many sockets and timers keep the process alive: what a client could leak. */
function resources(): { sockets: number; timers: number } {
  const info = process.getActiveResourcesInfo();
  return { sockets: info.filter((r) => r === 'TCPSocketWrap').length, timers: info.filter((r) => r === 'Timeout').length };
}

/**
 * Waits until no more sockets and timers are active than at `baseline`. Other tests' servers may
 * still be winding down at the baseline, so fewer is fine; more is a leak.
 */
async function backToBaseline(baseline: { sockets: number; timers: number }): Promise<void> {
  const settled = () => {
    const now = resources();
    return now.sockets <= baseline.sockets && now.timers <= baseline.timers;
  };
  await until(settled, 'no more sockets or timers than before', 2_000).catch((error: Error) => {
    throw new Error(`${error.message} (${JSON.stringify(baseline)}), still ${JSON.stringify(resources())}`);
  });
}

describe('close()', () => {
  it('closes the socket with 1000 and leaves no socket or timer behind', async () => {
    const server = await startServer({ ticket: 'off' });
    const baseline = resources();
    const client = createClient({ url: server.wsUrl, getToken: () => server.token(), wait: timerWait });
    const log = record(client);
    client.connect();
    await nextEvent(client, 'authenticated');
    await client.topic('room').subscribe();
    expect(resources().sockets).toBe(baseline.sockets + 2);
    client.close();
    expect(log.states.at(-1)).toEqual({ oldState: 'open', newState: 'closed', code: CloseCode.Normal, reason: 'client closed' });
    expect(log.events.at(-2)).toEqual(['close', { code: CloseCode.Normal, reason: 'client closed', action: 'stop' }]);
    await until(() => server.closes.length === 1, 'the server to see the close');
    expect(server.closes).toEqual([CloseCode.Normal]);
    expect(server.gateway.connectionCount()).toBe(0);
    await backToBaseline(baseline);
  });

  it('clears a pending reconnect timer', async () => {
    const server = await startServer({ ticket: 'off' });
    let connection: Connection | undefined;
    server.gateway.on('authenticated', (e) => {
      connection = e.connection;
    });
    const client = createClient({
      url: server.wsUrl,
      getToken: () => server.token(),
      wait: timerWait,
      minReconnectDelayMs: 60_000,
      maxReconnectDelayMs: 60_000,
    });
    client.connect();
    await nextEvent(client, 'authenticated');
    const baseline = resources();
    const reconnecting = nextEvent(client, 'state', (s) => s.newState === 'reconnecting');
    // 1011 means: back off, here for at least a minute.
    connection?.close(CloseCode.InternalError, 'boom');
    await reconnecting;
    await until(() => resources().sockets === baseline.sockets - 2, 'both ends to let go of the old socket');
    const timers = resources().timers;
    client.close();
    // The reconnect wait's timer is cleared at once, not left to fire.
    expect(resources().timers).toBe(timers - 1);
    expect(client.state).toBe('closed');
  });

  it('is not undone by a getToken that resolves after it', async () => {
    const server = await startServer({ ticket: 'off' });
    const baseline = resources();
    const slow = gate<void>();
    const client = createClient({
      url: server.wsUrl,
      getToken: async () => {
        await slow.promise;
        return server.token();
      },
    });
    const log = record(client);
    client.connect();
    expect(client.state).toBe('connecting');
    client.close();
    slow.open();
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(client.state).toBe('closed');
    expect(log.states.map((s) => s.newState)).toEqual(['connecting', 'closed']);
    expect(server.upgrades).toHaveLength(0);
    await backToBaseline(baseline);
  });

  it('aborts a socket whose upgrade is still unanswered, without an unhandled error', async () => {
    // A server that accepts the upgrade request and never answers it.
    const held: Socket[] = [];
    const silent = http.createServer();
    silent.on('upgrade', (_req, socket: Socket) => {
      socket.on('error', () => {});
      held.push(socket);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const baseline = resources();
      const { port } = silent.address() as AddressInfo;
      const client = createClient({ url: `ws://127.0.0.1:${port}/`, token: 'never sent' });
      const log = record(client);
      client.connect();
      await until(() => held.length === 1, 'the upgrade request');
      expect(client.state).toBe('connecting');
      client.close();
      await until(() => held[0]?.destroyed === true || held[0]?.readableEnded === true, 'the server to see the abort');
      expect(client.state).toBe('closed');
      expect(log.errors).toEqual([]);
      expect(log.states.map((s) => s.newState)).toEqual(['connecting', 'closed']);
      for (const socket of held) socket.destroy();
      await backToBaseline(baseline);
    } finally {
      for (const socket of held) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('is idempotent and stops every listener', async () => {
    const server = await startServer({ ticket: 'off' });
    const client = createClient({ url: server.wsUrl, token: await server.token() });
    let notified = 0;
    const unsubscribe = client.subscribeSnapshot(() => notified++);
    client.connect();
    await nextEvent(client, 'authenticated');
    client.close();
    client.close();
    expect(notified).toBe(4);
    unsubscribe();
    expect(client.getSnapshot()).toEqual({ state: 'closed', code: CloseCode.Normal, reason: 'client closed' });
  });
});
