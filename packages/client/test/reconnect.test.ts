import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CloseCode } from '@authsocket/protocol';
import type { Connection } from '@authsocket/server';
import { describe, expect, it } from 'vitest';
import { backoff, timerWait } from '../src/backoff.js';
import { RequestRefusedError } from '../src/index.js';
import {
  createClient,
  nextEvent,
  record,
  recordingWait,
  recordingWebSocket,
  startServer,
  stateReached,
  ticketProvider,
  until,
} from './helpers.js';


/** A port nothing listens on. */
async function deadPort(): Promise<number> {
  const probe = http.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

describe('reconnecting', () => {
  it('survives a server restart mid-stream: reconnects with a fresh ticket and the stream goes on', async () => {
    const first = await startServer({ ticket: 'required' });
    const port = first.port;
    let current = first;
    let ticketCalls = 0;
    const client = createClient({
      url: first.wsUrl,
      wait: timerWait,
      minReconnectDelayMs: 20,
      maxReconnectDelayMs: 200,
      getTicket: async () => {
        ticketCalls++;
        return ticketProvider(current).getTicket();
      },
    });
    const log = record(client);
    client.connect();
    await nextEvent(client, 'authenticated');
    for (let i = 0; i < 5; i++) await first.gateway.sendToUser('alice', i);
    await until(() => log.messages.length === 5, 'the first half of the stream');

    const dropped = nextEvent(client, 'close');
    await first.close();
    expect(await dropped).toEqual({ code: CloseCode.GoingAway, reason: 'server shutting down', action: 'backoff' });
    current = await startServer({ ticket: 'required' }, { port });
    await stateReached(client, 'open');
    for (let i = 5; i < 10; i++) await current.gateway.sendToUser('alice', i);
    await until(() => log.messages.length === 10, 'the second half of the stream');
    expect(log.messages.map((m) => m.data)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(ticketCalls).toBeGreaterThanOrEqual(2);
    expect(current.upgrades).toHaveLength(1);
    expect(current.upgrades[0]?.protocols[1]).toMatch(/^ticket\./);
    expect(log.states.map((s) => s.newState)).toContain('reconnecting');
  });

  it('waits full-jitter backoff delays between attempts and gives up after maxReconnectAttempts', async () => {
    const { delays, wait } = recordingWait();
    const client = createClient({
      url: `ws://127.0.0.1:${await deadPort()}/`,
      token: 'unused',
      wait,
      random: () => 0.5,
      minReconnectDelayMs: 100,
      maxReconnectDelayMs: 1_000,
      maxReconnectAttempts: 6,
    });
    const log = record(client);
    client.connect();
    await stateReached(client, 'closed');
    const bounds = { minDelayMs: 100, maxDelayMs: 1_000 };
    expect(delays).toEqual([0, 1, 2, 3, 4, 5].map((attempt) => backoff(attempt, bounds, () => 0.5)));
    expect(delays).toEqual([150, 250, 450, 550, 550, 550]);
    const closes = log.events.filter(([name]) => name === 'close').map(([, e]) => e);
    expect(closes).toHaveLength(7);
    expect(closes.every((e) => (e as { code: number }).code === CloseCode.Abnormal)).toBe(true);
    expect(client.getSnapshot()).toEqual({ state: 'closed', code: CloseCode.Abnormal, reason: 'gave up after 6 attempts' });
  });

  it('resets the attempt count after every successful authentication', async () => {
    const server = await startServer({ ticket: 'off' });
    const { delays, wait } = recordingWait();
    let connection: Connection | undefined;
    server.gateway.on('authenticated', (e) => {
      connection = e.connection;
    });
    const client = createClient({ url: server.wsUrl, getToken: () => server.token(), wait, random: () => 0, maxReconnectAttempts: 1 });
    client.connect();
    for (let round = 0; round < 3; round++) {
      await stateReached(client, 'open');
      const back = nextEvent(client, 'authenticated');
      connection?.close(CloseCode.InternalError, 'boom');
      await back;
    }
    expect(delays).toEqual([10, 10, 10]);
    expect(server.upgrades).toHaveLength(4);
  });

  it('waits the retryAfter of the rate_limited error frame that precedes a 4429 close', async () => {
    const server = await startServer({ ticket: 'off', messageRateLimit: { limit: 3, windowMs: 60_000 } });
    const { delays, wait } = recordingWait();
    const client = createClient({ url: server.wsUrl, token: await server.token(), wait });
    const log = record(client);
    client.connect();
    await nextEvent(client, 'authenticated');
    const back = nextEvent(client, 'authenticated');
    for (let i = 0; i < 4; i++) client.send(i);
    await back;
    const refused = log.errors.find((e) => e instanceof RequestRefusedError) as RequestRefusedError;
    expect(refused).toMatchObject({ reason: 'rate_limited' });
    expect(refused.retryAfter).toBeGreaterThan(0);
    expect(delays).toEqual([refused.retryAfter]);
    expect(log.events.filter(([name]) => name === 'close').map(([, e]) => e)).toEqual([
      { code: CloseCode.RateLimited, reason: 'rate limited', action: 'retry-after' },
    ]);
  });

  it('reconnects with backoff after a 4009 stream gap and resumes from the last positions it saw', async () => {
    const server = await startServer({ ticket: 'off' });
    let connection: Connection | undefined;
    server.gateway.on('authenticated', (e) => {
      connection = e.connection;
    });
    const { delays, wait } = recordingWait();
    const frames = recordingWebSocket();
    const client = createClient({ url: server.wsUrl, getToken: () => server.token(), wait, random: () => 0.5, WebSocket: frames.WebSocket });
    const log = record(client);
    client.connect();
    await client.topic('news').subscribe();
    await server.gateway.sendToUser('alice', 'u1');
    await server.gateway.publish('news', 'n1');
    await server.gateway.publish('news', 'n2');
    await until(() => log.messages.length === 3, 'three messages');
    const epochs = Object.fromEntries(log.messages.map((m) => [m.stream, m.epoch]));
    const back = nextEvent(client, 'authenticated');
    connection?.close(CloseCode.StreamGap, 'stream gap');
    const resumed = await back;
    expect(log.events.filter(([name]) => name === 'close').map(([, e]) => e)).toEqual([{ code: CloseCode.StreamGap, reason: 'stream gap', action: 'backoff' }]);
    expect(delays).toEqual([backoff(0, { minDelayMs: 10, maxDelayMs: 100 }, () => 0.5)]);
    expect(frames.sockets[1]?.[0]).toEqual({
      type: 'auth',
      token: expect.any(String),
      resume: { 'user:alice': { epoch: epochs['user:alice'], offset: 1 }, 'topic:news': { epoch: epochs['topic:news'], offset: 2 } },
    });
    expect(resumed.streams).toMatchObject({ 'user:alice': { offset: 1, recovered: true }, 'topic:news': { offset: 2, recovered: true } });
    expect(log.messages.map((m) => m.data)).toEqual(['u1', 'n1', 'n2']);
  });

  it('stops without reconnecting when the user is revoked (4403)', async () => {
    const server = await startServer({ ticket: 'off' });
    const client = createClient({ url: server.wsUrl, getToken: () => server.token() });
    client.connect();
    await nextEvent(client, 'authenticated');
    await server.gateway.revokeUser('alice');
    await stateReached(client, 'closed');
    expect(client.getSnapshot()).toEqual({ state: 'closed', code: CloseCode.Forbidden, reason: 'revoked' });
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(server.upgrades).toHaveLength(1);
  });

  it('stops without reconnecting when the server calls a frame malformed (4400)', async () => {
    const server = await startServer({ ticket: 'off' });
    const client = createClient({ url: server.wsUrl, token: await server.token() });
    client.connect();
    await nextEvent(client, 'authenticated');
    client.send(JSON.parse('{"__proto__": {"polluted": true}}'));
    await stateReached(client, 'closed');
    expect(client.getSnapshot()).toEqual({
      state: 'closed',
      code: CloseCode.BadRequest,
      reason: "frame contains the forbidden key '__proto__'",
    });
    expect(server.upgrades).toHaveLength(1);
  });

  it('ends unauthenticated on 4401 when there is no provider to get fresh credentials from', async () => {
    const server = await startServer({ ticket: 'off' });
    const client = createClient({ url: server.wsUrl, token: await server.badToken() });
    const log = record(client);
    client.connect();
    await stateReached(client, 'unauthenticated');
    expect(log.events.find(([name]) => name === 'close')?.[1]).toMatchObject({ code: CloseCode.Unauthorized, action: 'refresh-once' });
    expect(server.upgrades).toHaveLength(1);
  });
});
