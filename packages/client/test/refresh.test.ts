import { CloseCode } from '@authsocket/protocol';
import { describe, expect, it } from 'vitest';
import { UnauthorizedError } from '../src/index.js';
import { createClient, heldRefresh, nextEvent, record, recordingWait, startServer, stateReached, until } from './helpers.js';

const TOKEN_LIFETIME_S = 60;
const WINDOW_MS = 30_000;
const GRACE_MS = 10_000;

describe('token refresh', () => {
  it('refreshes in band before expiry, five times over, with no message lost or duplicated and no reconnect', async () => {
    const server = await startServer({ ticket: 'off', reauthWindowMs: WINDOW_MS, reauthGraceMs: GRACE_MS });
    let tokenCalls = 0;
    const client = createClient({
      url: server.wsUrl,
      getToken: () => {
        tokenCalls++;
        return server.token('alice', TOKEN_LIFETIME_S);
      },
    });
    const log = record(client);
    client.connect();
    const first = await nextEvent(client, 'authenticated');
    let sent = 0;
    const push = async (count: number) => {
      for (let i = 0; i < count; i++) expect(await server.gateway.sendToUser('alice', sent++)).toBe(1);
    };
    const expiries = [first.expiresAt];
    for (let round = 0; round < 5; round++) {
      await push(3);
      const refreshed = nextEvent(client, 'authenticated', (e) => e.reauth);
      // Into the window: the server asks for a fresh token and keeps delivering meanwhile.
      server.clock.advance(TOKEN_LIFETIME_S * 1000 - WINDOW_MS + 1_000);
      await push(3);
      expiries.push((await refreshed).expiresAt);
      await push(2);
    }
    await until(() => log.messages.length === sent, `${sent} messages`);
    expect(log.messages.map((m) => m.data)).toEqual(Array.from({ length: sent }, (_, i) => i));
    expect(tokenCalls).toBe(6);
    expect(expiries).toEqual([...expiries].sort((a, b) => a - b));
    expect(new Set(expiries).size).toBe(6);
    expect(log.events.filter(([name]) => name === 'reauthRequired')).toHaveLength(5);
    expect(log.states.map((s) => s.newState)).toEqual([
      'connecting',
      'authenticating',
      'open',
      ...Array.from({ length: 5 }, () => ['reauthenticating', 'open']).flat(),
    ]);
    expect(log.events.some(([name]) => name === 'close')).toBe(false);
    expect(server.upgrades).toHaveLength(1);
    expect(server.closes).toEqual([]);
  });

  it('answers a late reauth after expiry and receives the held messages once, in order, after auth_ok', async () => {
    const server = await startServer({ ticket: 'off', reauthWindowMs: WINDOW_MS, reauthGraceMs: GRACE_MS });
    const tokens = heldRefresh(server, 'alice', TOKEN_LIFETIME_S);
    const client = createClient({ url: server.wsUrl, getToken: tokens.getToken });
    const log = record(client);
    client.connect();
    await nextEvent(client, 'authenticated');
    await server.gateway.sendToUser('alice', 'before');
    const expiring = nextEvent(client, 'reauthRequired');
    server.clock.advance(TOKEN_LIFETIME_S * 1000 - WINDOW_MS);
    expect((await expiring).reason).toBe('expiring');
    await server.gateway.sendToUser('alice', 'in window');
    const expired = nextEvent(client, 'reauthRequired', (e) => e.reason === 'expired');
    server.clock.advance(WINDOW_MS + 1);
    await expired;
    // Delivery is held now: these wait on the server until the client proves a fresh token.
    await server.gateway.sendToUser('alice', 'held 1');
    await server.gateway.sendToUser('alice', 'held 2');
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(log.messages.map((m) => m.data)).toEqual(['before', 'in window']);
    const reauthenticated = nextEvent(client, 'authenticated', (e) => e.reauth);
    tokens.release();
    await reauthenticated;
    await until(() => log.messages.length === 4, 'the held messages');
    expect(log.messages.map((m) => m.data)).toEqual(['before', 'in window', 'held 1', 'held 2']);
    expect(tokens.calls()).toBe(2);
    expect(server.closes).toEqual([]);
  });

  it('reconnects at once with a fresh token after 4419 (policy close), without a backoff wait', async () => {
    const server = await startServer({ ticket: 'off', expiryPolicy: 'close' });
    const { delays, wait } = recordingWait();
    let tokenCalls = 0;
    const client = createClient({
      url: server.wsUrl,
      wait,
      getToken: () => {
        tokenCalls++;
        return server.token('alice', TOKEN_LIFETIME_S);
      },
    });
    const log = record(client);
    client.connect();
    await nextEvent(client, 'authenticated');
    const again = nextEvent(client, 'authenticated');
    server.clock.advance(TOKEN_LIFETIME_S * 1000);
    expect(await again).toMatchObject({ user: 'alice', reauth: false });
    expect(log.events.find(([name]) => name === 'close')?.[1]).toEqual({
      code: CloseCode.TokenExpired,
      reason: 'token expired',
      action: 'refresh-now',
    });
    expect(delays).toEqual([]);
    expect(tokenCalls).toBe(2);
    expect(server.upgrades).toHaveLength(2);
  });

  it('shares one slow getToken call between the in-band refresh and the reconnect after a missed deadline', async () => {
    const server = await startServer({ ticket: 'off', reauthWindowMs: WINDOW_MS, reauthGraceMs: GRACE_MS });
    const tokens = heldRefresh(server, 'alice', TOKEN_LIFETIME_S);
    const client = createClient({ url: server.wsUrl, getToken: tokens.getToken });
    const log = record(client);
    client.connect();
    await nextEvent(client, 'authenticated');
    const closed = nextEvent(client, 'close');
    server.clock.advance(TOKEN_LIFETIME_S * 1000 + GRACE_MS);
    expect((await closed).code).toBe(CloseCode.TokenExpired);
    const back = nextEvent(client, 'authenticated');
    tokens.release();
    expect(await back).toMatchObject({ reauth: false });
    expect(tokens.calls()).toBe(2);
    expect(log.states.map((s) => s.newState)).toEqual([
      'connecting',
      'authenticating',
      'open',
      'reauthenticating',
      'reconnecting',
      'connecting',
      'authenticating',
      'open',
    ]);
  });

  it('refreshes tokens shorter-lived than the warning window once each, halfway through, not in a loop', async () => {
    const server = await startServer({ ticket: 'off', reauthWindowMs: WINDOW_MS, reauthGraceMs: GRACE_MS });
    // Every token lives 20 s: less than the 30 s window; the server warns each halfway through.
    let tokenCalls = 0;
    const client = createClient({
      url: server.wsUrl,
      getToken: () => {
        tokenCalls++;
        return server.token('alice', 20);
      },
    });
    const log = record(client);
    client.connect();
    await nextEvent(client, 'authenticated');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(tokenCalls).toBe(1);
    for (let round = 2; round <= 4; round++) {
      const refreshed = nextEvent(client, 'authenticated', (e) => e.reauth);
      server.clock.advance(10_000);
      await refreshed;
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(tokenCalls).toBe(round);
    }
    expect(log.events.filter(([name]) => name === 'reauthRequired').map(([, e]) => (e as { reason: string }).reason)).toEqual([
      'expiring',
      'expiring',
      'expiring',
    ]);
    await server.gateway.sendToUser('alice', 'after three refreshes');
    await until(() => log.messages.length === 1, 'the message');
    expect(client.state).toBe('open');
    expect(server.upgrades).toHaveLength(1);
  });

  it('ends in unauthenticated after a bounded number of attempts when refreshed tokens are refused', async () => {
    const server = await startServer({ ticket: 'off', reauthWindowMs: WINDOW_MS });
    let tokenCalls = 0;
    const client = createClient({
      url: server.wsUrl,
      maxReconnectAttempts: 100,
      getToken: () => (++tokenCalls === 1 ? server.token('alice', TOKEN_LIFETIME_S) : server.badToken()),
    });
    const log = record(client);
    client.connect();
    await nextEvent(client, 'authenticated');
    server.clock.advance(TOKEN_LIFETIME_S * 1000 - WINDOW_MS);
    await stateReached(client, 'unauthenticated');
    // The first token, the refused in-band refresh, then one fresh token for a new socket: refused too.
    expect(tokenCalls).toBe(3);
    expect(server.upgrades).toHaveLength(2);
    await until(() => server.closes.length === 2, 'the server to see both sockets close');
    expect(server.closes).toEqual([CloseCode.Unauthorized, CloseCode.Unauthorized]);
    expect(log.states.at(-1)).toEqual({
      oldState: 'authenticating',
      newState: 'unauthenticated',
      code: CloseCode.Unauthorized,
      reason: 'invalid token',
    });
    expect(log.errors.at(-1)).toBeInstanceOf(UnauthorizedError);
    expect(client.getSnapshot()).toEqual({ state: 'unauthenticated', code: CloseCode.Unauthorized, reason: 'invalid token' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(server.upgrades).toHaveLength(2);
  });

  it('stops in unauthenticated at once when getToken throws UnauthorizedError', async () => {
    const server = await startServer({ ticket: 'off' });
    const client = createClient({
      url: server.wsUrl,
      getToken: async () => {
        throw new UnauthorizedError('session ended');
      },
    });
    const log = record(client);
    client.connect();
    await stateReached(client, 'unauthenticated');
    expect(log.states.at(-1)).toEqual({ oldState: 'connecting', newState: 'unauthenticated', reason: 'session ended' });
    expect(server.upgrades).toHaveLength(0);
  });

  it('retries a getToken that fails for another reason, with backoff', async () => {
    const server = await startServer({ ticket: 'off' });
    const { delays, wait } = recordingWait();
    let tokenCalls = 0;
    const client = createClient({
      url: server.wsUrl,
      wait,
      random: () => 0.5,
      minReconnectDelayMs: 100,
      maxReconnectDelayMs: 10_000,
      getToken: async () => {
        if (++tokenCalls <= 3) throw new Error('identity provider unreachable');
        return server.token();
      },
    });
    const log = record(client);
    client.connect();
    await nextEvent(client, 'authenticated');
    expect(delays).toEqual([150, 250, 450]);
    expect(log.errors.map((e) => e.message)).toEqual(Array(3).fill('identity provider unreachable'));
    expect(server.upgrades).toHaveLength(1);
  });
});
