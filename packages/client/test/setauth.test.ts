import { CloseCode } from '@authsocket/protocol';
import { describe, expect, it } from 'vitest';
import { CancelledError, UnauthorizedError } from '../src/index.js';
import { createClient, nextEvent, record, startServer, stateReached, until } from './helpers.js';

describe('setAuth', () => {
  it('swaps the token in band on the live socket by default: no close, same connection', async () => {
    const server = await startServer({ ticket: 'off' });
    const client = createClient({ url: server.wsUrl, token: await server.token('alice', 100) });
    const log = record(client);
    client.connect();
    const first = await nextEvent(client, 'authenticated');
    const done = client.setAuth({ token: await server.token('alice', 900) });
    expect(client.state).toBe('reauthenticating');
    await done;
    expect(client.state).toBe('open');
    const second = log.events.filter(([name]) => name === 'authenticated').at(-1)?.[1];
    expect(second).toMatchObject({ user: 'alice', reauth: true });
    expect((second as { expiresAt: number }).expiresAt - first.expiresAt).toBe(800_000);
    expect(log.events.some(([name]) => name === 'close')).toBe(false);
    expect(server.upgrades).toHaveLength(1);
    expect(server.gateway.connectionCount('alice')).toBe(1);
  });

  it('with the reconnect strategy closes the socket and opens a new one with the new credentials', async () => {
    const server = await startServer({ ticket: 'off' });
    const client = createClient({ url: server.wsUrl, token: await server.token('alice', 100) });
    const log = record(client);
    client.connect();
    await nextEvent(client, 'authenticated');
    await client.setAuth({ token: await server.token('alice', 900) }, { strategy: 'reconnect' });
    expect(client.getSnapshot()).toMatchObject({ state: 'open', user: 'alice', expiresAt: (Math.floor(server.clock.now() / 1000) + 900) * 1000 });
    expect(log.events.filter(([name]) => name === 'close').map(([, e]) => e)).toEqual([
      { code: CloseCode.Normal, reason: 'setAuth', action: 'stop' },
    ]);
    expect(log.states.map((s) => s.newState).slice(3)).toEqual(['reconnecting', 'connecting', 'authenticating', 'open']);
    expect(server.upgrades).toHaveLength(2);
    await until(() => server.closes.length === 1, 'the old socket to close');
    expect(server.closes).toEqual([CloseCode.Normal]);
  });

  it('uses the setAuthStrategy option as the default strategy', async () => {
    const server = await startServer({ ticket: 'off' });
    const client = createClient({ url: server.wsUrl, token: await server.token(), setAuthStrategy: 'reconnect' });
    client.connect();
    await nextEvent(client, 'authenticated');
    await client.setAuth({ token: await server.token() });
    expect(server.upgrades).toHaveLength(2);
  });

  it('only stores the credentials before connect()', async () => {
    const server = await startServer({ ticket: 'off' });
    const client = createClient({ url: server.wsUrl });
    await client.setAuth({ token: await server.token('dave') });
    expect(client.state).toBe('idle');
    client.connect();
    expect((await nextEvent(client, 'authenticated')).user).toBe('dave');
  });

  it('lets the application answer reauth_required itself when there is no getToken', async () => {
    const server = await startServer({ ticket: 'off', reauthWindowMs: 30_000 });
    const client = createClient({ url: server.wsUrl, token: await server.token('alice', 60) });
    client.on('reauthRequired', () => {
      void server.token('alice', 600).then((token) => client.setAuth({ token }));
    });
    client.connect();
    await nextEvent(client, 'authenticated');
    const refreshed = nextEvent(client, 'authenticated', (e) => e.reauth);
    server.clock.advance(31_000);
    await refreshed;
    expect(server.upgrades).toHaveLength(1);
  });

  it('rejects and stops when the new token belongs to another user (4403)', async () => {
    const server = await startServer({ ticket: 'off' });
    const client = createClient({ url: server.wsUrl, token: await server.token('alice') });
    client.connect();
    await nextEvent(client, 'authenticated');
    const outcome = await client.setAuth({ token: await server.token('mallory') }).catch((e: unknown) => e);
    expect(outcome).toBeInstanceOf(CancelledError);
    expect(client.getSnapshot()).toEqual({ state: 'closed', code: CloseCode.Forbidden, reason: 'token is for a different user' });
  });

  it('reconnects from unauthenticated with the new credentials', async () => {
    const server = await startServer({ ticket: 'off' });
    const client = createClient({ url: server.wsUrl, token: await server.badToken() });
    client.connect();
    await stateReached(client, 'unauthenticated');
    await client.setAuth({ token: await server.token('erin') });
    expect(client.getSnapshot()).toMatchObject({ state: 'open', user: 'erin' });
  });
});

describe('logout', () => {
  it('stops deliveries at once, keeps the socket, and a later setAuth binds it again', async () => {
    const server = await startServer({ ticket: 'off' });
    const client = createClient({ url: server.wsUrl, token: await server.token('alice'), initPayload: 'hello' });
    const log = record(client);
    client.connect();
    await nextEvent(client, 'authenticated');
    await client.logout();
    expect(client.getSnapshot()).toEqual({ state: 'unauthenticated', reason: 'logout' });
    expect(await server.gateway.sendToUser('alice', 'after logout')).toBe(0);
    await client.setAuth({ token: await server.token('bob') });
    expect(client.getSnapshot()).toMatchObject({ state: 'open', user: 'bob' });
    const pushed = nextEvent(client, 'message');
    await server.gateway.sendToUser('bob', 'for bob');
    expect((await pushed).data).toBe('for bob');
    expect(log.messages.map((m) => m.data)).toEqual(['for bob']);
    expect(server.upgrades).toHaveLength(1);
    // initPayload goes first after every authentication of the socket.
    await until(() => server.received.length === 2, 'two init payloads');
    expect(server.received).toEqual(['hello', 'hello']);
  });

  it('before connect() rejects what was queued or awaited and forgets the credentials', async () => {
    const server = await startServer({ ticket: 'off' });
    const client = createClient({ url: server.wsUrl, token: await server.token() });
    const queued = client.send('never', { ack: true });
    const subscribed = client.topic('room').subscribe();
    await client.logout();
    await expect(queued).rejects.toThrow(CancelledError);
    await expect(subscribed).rejects.toThrow('logged out');
    expect(client.state).toBe('idle');
    client.connect();
    await stateReached(client, 'unauthenticated');
    expect(client.getSnapshot()).toEqual({ state: 'unauthenticated', reason: 'no credentials' });
    expect(server.upgrades).toHaveLength(0);
  });

  it('makes a pending setAuth reject with UnauthorizedError', async () => {
    const server = await startServer({ ticket: 'off' });
    const client = createClient({ url: server.wsUrl, token: await server.token() });
    client.connect();
    await nextEvent(client, 'authenticated');
    const pending = client.setAuth({ token: await server.token() }, { strategy: 'reconnect' });
    await client.logout();
    await expect(pending).rejects.toThrow(UnauthorizedError);
  });
});
