import { afterEach, describe, expect, it } from 'vitest';
import { MemoryTicketStore, StoreUnavailableError, type TicketRecord, type TicketStore, ticketKey } from '../src/index.js';
import { refusal, startServer, TestSocket, type TestServer } from './helpers.js';

let server: TestServer;
afterEach(async () => {
  await server?.close();
});

async function postTicket(target: TestServer, authorization?: string): Promise<Response> {
  return fetch(`${target.origin}/auth/ticket`, {
    method: 'POST',
    headers: authorization ? { authorization } : {},
  });
}

describe('POST /auth/ticket', () => {
  it('issues a 256-bit ticket bound to the token expiry, with Cache-Control: no-store', async () => {
    server = await startServer({ ticketTtlMs: 30_000 });
    const response = await postTicket(server, `Bearer ${await server.token('alice')}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const body = (await response.json()) as { ticket: string; expiresAt: number };
    expect(body.ticket).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(body.expiresAt).toBe(server.clock.now() + 30_000);
  });

  it('never lets a ticket outlive the token it was issued for', async () => {
    server = await startServer({ ticketTtlMs: 30_000 });
    const token = await server.token('alice', { expiresIn: 10 });
    const response = await postTicket(server, `Bearer ${token}`);
    const body = (await response.json()) as { expiresAt: number };
    expect(body.expiresAt).toBe(Math.floor(server.clock.now() / 1000) * 1000 + 10_000);
  });

  it.each([
    ['no Authorization header', undefined],
    ['a non-Bearer scheme', 'Basic YWxpY2U6cHc='],
    ['a garbage token', 'Bearer not.a.jwt'],
  ])('answers 401 with one generic body for %s', async (_name, authorization) => {
    server = await startServer();
    const response = await postTicket(server, authorization);
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer');
    expect(await response.json()).toEqual({ error: 'unauthorized' });
  });

  it('answers 405 to other methods', async () => {
    server = await startServer();
    const response = await fetch(`${server.origin}/auth/ticket`);
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('POST');
  });

  it('fails closed with 503 when the ticket store is unavailable', async () => {
    const broken: TicketStore = {
      put: async () => {
        throw new StoreUnavailableError();
      },
      take: async () => {
        throw new StoreUnavailableError();
      },
    };
    server = await startServer({ ticketStore: broken });
    const response = await postTicket(server, `Bearer ${await server.token('alice')}`);
    expect(response.status).toBe(503);
  });

  it('stores only the hash of a ticket, so a store dump holds nothing redeemable', async () => {
    const stored: string[] = [];
    const inner = new MemoryTicketStore();
    const recording: TicketStore = {
      put: async (key: string, record: TicketRecord, ttl: number) => {
        stored.push(key, JSON.stringify(record));
        return inner.put(key, record, ttl);
      },
      take: (key: string, consume: boolean) => inner.take(key, consume),
    };
    server = await startServer({ ticketStore: recording });
    const ticket = await server.ticket('alice');
    expect(stored.join('\n')).not.toContain(ticket);
    expect(stored[0]).toBe(ticketKey(ticket));
  });
});

describe('ticket at the upgrade', () => {
  it('opens an authenticated socket that receives auth_ok first (subprotocol)', async () => {
    server = await startServer();
    const socket = await TestSocket.withTicket(server.wsUrl, await server.ticket('alice'));
    expect(socket.ws.protocol).toBe('authsocket.v1');
    const ok = await socket.next('auth_ok');
    expect(socket.frames[0]).toBe(ok);
    expect(ok.user).toBe('alice');
    expect(ok.expiresAt).toBe(Math.floor(server.clock.now() / 1000) * 1000 + 300_000);
    socket.close();
  });

  it('accepts the ticket in the query string too', async () => {
    server = await startServer();
    const socket = await TestSocket.open(`${server.wsUrl}?ticket=${await server.ticket('bob')}`);
    expect((await socket.next('auth_ok')).user).toBe('bob');
    socket.close();
  });

  it('refuses a reused ticket with 401: tickets are single-use by default', async () => {
    server = await startServer();
    const ticket = await server.ticket('alice');
    (await TestSocket.withTicket(server.wsUrl, ticket)).close();
    const refused = await refusal(TestSocket.withTicket(server.wsUrl, ticket));
    expect(refused.status).toBe(401);
    expect(refused.body).toBe('unauthorized');
  });

  it('lets a ticket be reused within its TTL when ticketReuse is on', async () => {
    server = await startServer({ ticketReuse: true });
    const ticket = await server.ticket('alice');
    const first = await TestSocket.withTicket(server.wsUrl, ticket);
    const second = await TestSocket.withTicket(server.wsUrl, ticket);
    expect((await second.next('auth_ok')).user).toBe('alice');
    first.close();
    second.close();
  });

  it('gives the same 401 body for a missing, unknown, malformed or expired ticket', async () => {
    server = await startServer({ ticket: 'required', ticketTtlMs: 5_000 });
    const expired = await server.ticket('alice');
    server.clock.advance(5_001);
    const cases = [
      TestSocket.open(server.wsUrl),
      TestSocket.withTicket(server.wsUrl, 'A'.repeat(43)),
      TestSocket.withTicket(server.wsUrl, 'short'),
      TestSocket.withTicket(server.wsUrl, expired),
    ];
    for (const opening of cases) {
      const refused = await refusal(opening);
      expect(refused.status).toBe(401);
      expect(refused.body).toBe('unauthorized');
    }
  });

  it('lets exactly one of 50 parallel redemptions of one ticket through', async () => {
    server = await startServer();
    const ticket = await server.ticket('alice');
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, () => TestSocket.withTicket(server.wsUrl, ticket)),
    );
    const opened = results.filter((result) => result.status === 'fulfilled');
    const refused = results.filter((result) => result.status === 'rejected');
    expect(opened).toHaveLength(1);
    expect(refused.map((result) => (result.reason as { status: number }).status)).toEqual(Array(49).fill(401));
    for (const result of opened) result.value.close();
  });

  it('fails closed with 503 when the store cannot redeem', async () => {
    const store = new MemoryTicketStore();
    let down = false;
    const flaky: TicketStore = {
      put: (key, record, ttl) => store.put(key, record, ttl),
      take: async (key, consume) => {
        if (down) throw new StoreUnavailableError();
        return store.take(key, consume);
      },
    };
    server = await startServer({ ticketStore: flaky });
    const ticket = await server.ticket('alice');
    down = true;
    expect((await refusal(TestSocket.withTicket(server.wsUrl, ticket))).status).toBe(503);
  });

  it('refuses a ticket with 400 when tickets are off', async () => {
    server = await startServer({ ticket: 'off' });
    expect((await refusal(TestSocket.withTicket(server.wsUrl, 'A'.repeat(43)))).status).toBe(400);
    expect((await fetch(`${server.origin}/auth/ticket`, { method: 'POST' })).status).toBe(404);
  });
});
