import { CloseCode, SUBPROTOCOL } from '@authsocket/protocol';
import { describe, expect, it } from 'vitest';
import { fetchTicket, TicketRequestError, UnauthorizedError } from '../src/index.js';
import { createClient, nextEvent, record, startServer, stateReached, ticketProvider } from './helpers.js';

describe('connecting', () => {
  it('connects with a ticket offered in the subprotocol, never in the URL, and receives pushes', async () => {
    const server = await startServer({ ticket: 'required' });
    const tickets = ticketProvider(server);
    const client = createClient({ url: server.wsUrl, getTicket: tickets.getTicket });
    const log = record(client);
    client.connect();
    const authenticated = await nextEvent(client, 'authenticated');
    expect(authenticated).toMatchObject({ user: 'alice', reauth: false });
    expect(log.states.map((s) => s.newState)).toEqual(['connecting', 'authenticating', 'open']);
    expect(server.upgrades).toHaveLength(1);
    expect(server.upgrades[0]?.url).toBe('/');
    expect(server.upgrades[0]?.protocols).toEqual([SUBPROTOCOL, expect.stringMatching(/^ticket\.[A-Za-z0-9_-]{43}$/)]);

    const pushed = nextEvent(client, 'message');
    expect(await server.gateway.sendToUser('alice', { hello: 'alice' })).toBe(1);
    expect(await pushed).toEqual({ data: { hello: 'alice' }, stream: 'user:alice', offset: 1, epoch: expect.any(String) });
    expect(client.getSnapshot()).toMatchObject({ state: 'open', user: 'alice' });
  });

  it('puts the ticket in the query string when ticketIn is query', async () => {
    const server = await startServer({ ticket: 'required' });
    const client = createClient({ url: server.wsUrl, getTicket: ticketProvider(server).getTicket, ticketIn: 'query' });
    client.connect();
    await nextEvent(client, 'authenticated');
    expect(server.upgrades[0]?.url).toMatch(/^\/\?ticket=[A-Za-z0-9_-]{43}$/);
    expect(server.upgrades[0]?.protocols).toEqual([SUBPROTOCOL]);
  });

  it('connects with a token sent as the first frame, keeping it out of the handshake', async () => {
    const server = await startServer({ ticket: 'off' });
    const client = createClient({ url: server.wsUrl, token: await server.token('bob') });
    client.connect();
    expect(await nextEvent(client, 'authenticated')).toMatchObject({ user: 'bob', reauth: false });
    expect(server.upgrades[0]?.protocols).toEqual([SUBPROTOCOL]);
    const pushed = nextEvent(client, 'message');
    await server.gateway.sendToUser('bob', 42);
    expect((await pushed).data).toBe(42);
  });

  it('connects with both: a ticket at the upgrade and the token in the first frame (two-layer mode)', async () => {
    const server = await startServer({ ticket: 'required', requireAuthMessage: true });
    const authMethods: string[] = [];
    server.gateway.on('authenticated', ({ method }) => authMethods.push(method));
    const client = createClient({
      url: server.wsUrl,
      getTicket: ticketProvider(server).getTicket,
      getToken: () => server.token('alice'),
    });
    client.connect();
    expect(await nextEvent(client, 'authenticated')).toMatchObject({ user: 'alice', reauth: false });
    expect(authMethods).toEqual(['message']);
    expect(server.upgrades[0]?.protocols[1]).toMatch(/^ticket\./);
    const pushed = nextEvent(client, 'message');
    await server.gateway.sendToUser('alice', 'two-layer');
    expect((await pushed).data).toBe('two-layer');
  });

  it('stops in closed when the two-layer token names another user than the ticket (4403)', async () => {
    const server = await startServer({ ticket: 'required', requireAuthMessage: true });
    const client = createClient({
      url: server.wsUrl,
      getTicket: ticketProvider(server, 'alice').getTicket,
      getToken: () => server.token('mallory'),
    });
    const log = record(client);
    client.connect();
    await stateReached(client, 'closed');
    expect(log.states.at(-1)).toEqual({
      oldState: 'authenticating',
      newState: 'closed',
      code: CloseCode.Forbidden,
      reason: 'token is for a different user',
    });
    expect(server.upgrades).toHaveLength(1);
  });

  it('presents the token at the handshake as token.<jwt> when handshakeToken says so', async () => {
    const server = await startServer({ ticket: 'off', handshakeToken: true });
    const token = await server.token();
    const client = createClient({ url: server.wsUrl, token, handshakeToken: 'protocol' });
    client.connect();
    await nextEvent(client, 'authenticated');
    expect(server.upgrades[0]?.protocols).toEqual([SUBPROTOCOL, `token.${token}`]);
  });

  it('takes its initial credentials from the auth option as from the shorthands', async () => {
    const server = await startServer({ ticket: 'off' });
    const client = createClient({ url: server.wsUrl, auth: { token: await server.token('carol') } });
    client.connect();
    expect((await nextEvent(client, 'authenticated')).user).toBe('carol');
  });

  it('uses a static ticket for the first connection only: it is single use', async () => {
    const server = await startServer({ ticket: 'required' });
    const { ticket } = await fetchTicket(server.origin, await server.token());
    const client = createClient({ url: server.wsUrl, ticket });
    client.connect();
    await nextEvent(client, 'authenticated');
    await Promise.all([stateReached(client, 'unauthenticated'), server.gateway.close()]);
    expect(client.getSnapshot()).toEqual({ state: 'unauthenticated', reason: 'no credentials' });
    expect(server.upgrades).toHaveLength(1);
  });

  it('stays unauthenticated without opening a socket when getTicket throws UnauthorizedError', async () => {
    const server = await startServer({ ticket: 'required' });
    const client = createClient({
      url: server.wsUrl,
      getTicket: async () => (await fetchTicket(server.origin, await server.badToken())).ticket,
    });
    const log = record(client);
    client.connect();
    await stateReached(client, 'unauthenticated');
    expect(log.errors).toHaveLength(1);
    expect(log.errors[0]).toBeInstanceOf(UnauthorizedError);
    expect(log.errors[0]).toMatchObject({ code: 'ERR_UNAUTHORIZED', message: 'ticket request refused' });
    expect(server.upgrades).toHaveLength(0);
  });
});

describe('fetchTicket', () => {
  it('returns the ticket and its expiry from POST /auth/ticket', async () => {
    const server = await startServer();
    const ticket = await fetchTicket(server.wsUrl, await server.token());
    expect(ticket.ticket).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(ticket.expiresAt).toBeGreaterThan(server.clock.now());
  });

  it('turns a 401 into UnauthorizedError and other statuses into TicketRequestError', async () => {
    const server = await startServer();
    await expect(fetchTicket(server.origin, await server.badToken())).rejects.toThrow(UnauthorizedError);
    // With tickets off, the endpoint does not exist.
    const ticketless = await startServer({ ticket: 'off' });
    const error = await fetchTicket(ticketless.origin, await ticketless.token()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TicketRequestError);
    expect(error).toMatchObject({ code: 'ERR_TICKET_REQUEST', status: 404 });
  });
});
