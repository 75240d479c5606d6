import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { RESUME_PROTOCOL_PREFIX, SUBPROTOCOL, TICKET_PROTOCOL_PREFIX, TOKEN_PROTOCOL_PREFIX } from '@authsocket/protocol';
import { createGateway, type Gateway, ManualClock } from '@authsocket/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Canary } from './helpers/canary.js';
import { Client, refusal } from './helpers/client.js';
import { eventually, type GatewayHandle, startTestGateway, wholeSecondClock } from './helpers/gateway.js';
import { RawPeer, rawExchange, upgradeRequest } from './helpers/raw.js';
import { b64url, mint, SECRET } from './helpers/tokens.js';

const APP_ORIGIN = 'https://app.example.com';

let gateway: GatewayHandle;
let clock: ManualClock;
let canary: Canary;

beforeAll(async () => {
  clock = wholeSecondClock();
  gateway = await startTestGateway(['--ticket-mode', 'required', '--allowed-origins', APP_ORIGIN], { clock });
  canary = await Canary.onGateway(gateway);
});
afterAll(async () => {
  canary.close();
  await gateway.close();
});

/** Waits until the canary is the only connection left: attack sockets are all released. */
const onlyCanaryLeft = () => eventually(async () => (await gateway.health()).connections === 1, 5_000, 'only the canary connected');

const ticketEntry = (ticket: string) => `${TICKET_PROTOCOL_PREFIX}${ticket}`;
/** A raw upgrade with these subprotocol entries (and headers), answered and closed by the server. */
const upgrade = (protocols: readonly string[], { path = '/ws', headers = {} }: { path?: string; headers?: Record<string, string> } = {}) =>
  rawExchange(gateway.port, upgradeRequest(gateway.port, { path, protocols, headers }));

describe('tickets at the upgrade (--ticket-mode required)', () => {
  it('refuses a missing, unknown, malformed, expired, used or revoked ticket with one identical 401 response', async () => {
    const used = await gateway.ticket('alice');
    (await Client.withTicket(gateway.wsUrl, used)).close();
    const revoked = await gateway.ticket('mallory');
    await gateway.api('/users/mallory/revoke');
    const expired = await gateway.ticket('alice');
    clock.advance(30_001);

    const attempts: Array<[string, Promise<{ raw: Buffer; status: number; body: string }>]> = [
      ['missing', upgrade([SUBPROTOCOL])],
      ['unknown', upgrade([SUBPROTOCOL, ticketEntry(randomBytes(32).toString('base64url'))])],
      ['malformed', upgrade([SUBPROTOCOL, ticketEntry('not-a-ticket')])],
      ['expired', upgrade([SUBPROTOCOL, ticketEntry(expired)])],
      ['used', upgrade([SUBPROTOCOL, ticketEntry(used)])],
      ['revoked', upgrade([SUBPROTOCOL, ticketEntry(revoked)])],
      ['unknown, in the query string', upgrade([SUBPROTOCOL], { path: `/ws?ticket=${randomBytes(32).toString('base64url')}` })],
    ];
    const answers = await Promise.all(attempts.map(async ([cause, answer]) => [cause, await answer] as const));
    const reference = answers[0]?.[1].raw.toString('latin1');
    expect(reference).toMatch(/^HTTP\/1\.1 401 Unauthorized\r\n[\s\S]*\r\n\r\nunauthorized$/);
    for (const [cause, answer] of answers) expect(answer.raw.toString('latin1'), cause).toBe(reference);
    await canary.assertAlive();
  });

  it('opens exactly one socket out of 50 parallel redemptions of one ticket; the other 49 get 401', async () => {
    await onlyCanaryLeft();
    const ticket = await gateway.ticket('alice');
    const outcomes = await Promise.allSettled(Array.from({ length: 50 }, () => Client.withTicket(gateway.wsUrl, ticket)));
    const opened = outcomes.filter((outcome) => outcome.status === 'fulfilled').map((outcome) => outcome.value);
    const refused = outcomes.filter((outcome) => outcome.status === 'rejected').map((outcome) => (outcome.reason as { status: number }).status);
    expect(opened).toHaveLength(1);
    expect(refused).toEqual(Array.from({ length: 49 }, () => 401));
    const [winner] = opened as [Client];
    expect(await winner.next((frame) => frame.type === 'auth_ok')).toMatchObject({ user: 'alice' });
    expect((await gateway.health()).connections).toBe(2);
    winner.close();
    await canary.assertAlive();
  });

  it("closes 4403 when a ticket-authenticated socket sends another user's JWT", async () => {
    const socket = await Client.withTicket(gateway.wsUrl, await gateway.ticket('alice'));
    await socket.next((frame) => frame.type === 'auth_ok');
    socket.send({ type: 'auth', token: await gateway.token('bob') });
    expect(await socket.closed).toEqual({ code: 4403, reason: 'token is for a different user' });
    await canary.assertAlive();
  });

  it('never echoes the ticket back: the 101 selects exactly authsocket.v1', async () => {
    const ticket = await gateway.ticket('alice');
    const peer = await RawPeer.connect(gateway.port, { protocols: [SUBPROTOCOL, ticketEntry(ticket)] });
    expect(peer.head).toMatch(/\r\nSec-WebSocket-Protocol: authsocket\.v1(\r\n|$)/i);
    expect(peer.head).not.toContain(ticket);
    peer.socket.destroy();
    await canary.assertAlive();
  });
});

describe('two-layer mode: ticket at the upgrade, then the JWT (createGateway: the gateway process has no option for it)', () => {
  let twoLayer: Gateway;
  let server: http.Server;
  let wsUrl: string;
  let origin: string;
  const twoLayerClock = new ManualClock(Math.floor(Date.now() / 1000) * 1000);

  beforeAll(async () => {
    twoLayer = createGateway({ jwt: { secret: SECRET }, ticket: 'required', requireAuthMessage: true, clock: twoLayerClock });
    server = http.createServer(twoLayer.handleRequest);
    twoLayer.attach(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    origin = `http://127.0.0.1:${port}`;
    wsUrl = `ws://127.0.0.1:${port}/`;
  });
  afterAll(async () => {
    await twoLayer.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const token = (sub: string) => mint({ now: twoLayerClock.now(), sub });
  const ticketFor = async (sub: string) => {
    const response = await fetch(`${origin}/auth/ticket`, { method: 'POST', headers: { authorization: `Bearer ${await token(sub)}` } });
    return ((await response.json()) as { ticket: string }).ticket;
  };
  const twoLayerCanary = async () => {
    const client = await Client.withTicket(wsUrl, await ticketFor('canary'), { localAddress: '127.0.0.1' });
    client.send({ type: 'auth', token: await token('canary') });
    await client.next((frame) => frame.type === 'auth_ok');
    return client;
  };

  it("closes 4403 when user A's ticket is followed by user B's JWT, and delivers nothing to either", async () => {
    const bystander = await twoLayerCanary();
    const socket = await Client.withTicket(wsUrl, await ticketFor('alice'));
    expect(await twoLayer.sendToUser('alice', 'before the JWT')).toBe(0);
    socket.send({ type: 'auth', token: await token('mallory') });
    expect(await socket.closed).toEqual({ code: 4403, reason: 'token is for a different user' });
    expect(socket.messages()).toEqual([]);
    expect(twoLayer.connectionCount('mallory')).toBe(0);
    expect(await twoLayer.sendToUser('canary', 'still here')).toBe(1);
    await bystander.next((frame) => frame.type === 'message' && frame.data === 'still here');
    bystander.close();
  });

  it('closes 4401 when the JWT after the ticket is invalid', async () => {
    const socket = await Client.withTicket(wsUrl, await ticketFor('alice'));
    socket.send({ type: 'auth', token: `${await token('alice')}x` });
    expect(await socket.closed).toEqual({ code: 4401, reason: 'invalid token' });
  });
});

describe('origins (--allowed-origins https://app.example.com)', () => {
  it.each([
    ['null', 'null'],
    ['another site', 'https://evil.example'],
    ['a suffix attack', 'https://app.example.com.evil.com'],
    ['a prefix attack', 'https://evil-app.example.com'],
    ['another scheme', 'http://app.example.com'],
    ['another port', 'https://app.example.com:8443'],
    ['the default port written out', 'https://app.example.com:443'],
    ['a trailing slash', 'https://app.example.com/'],
    ['upper case', 'HTTPS://APP.EXAMPLE.COM'],
  ])('refuses %s (%s) with 403 before looking at the ticket', async (_name, origin) => {
    const ticket = await gateway.ticket('alice');
    const answer = await upgrade([SUBPROTOCOL, ticketEntry(ticket)], { headers: { Origin: origin } });
    expect(answer.status).toBe(403);
    expect(answer.body).toBe('forbidden');
    // Refused before redemption: the ticket is still good for its owner.
    (await Client.withTicket(gateway.wsUrl, ticket, { headers: { Origin: APP_ORIGIN } })).close();
    await canary.assertAlive();
  });

  it('refuses two Origin headers, even when one of them is allowed', async () => {
    const ticket = await gateway.ticket('alice');
    const request = upgradeRequest(gateway.port, { protocols: [SUBPROTOCOL, ticketEntry(ticket)] }).replace(
      '\r\n\r\n',
      `\r\nOrigin: ${APP_ORIGIN}\r\nOrigin: https://evil.example\r\n\r\n`,
    );
    expect((await rawExchange(gateway.port, request)).status).toBe(403);
  });

  it('lets the exact allowed origin in', async () => {
    const socket = await Client.withTicket(gateway.wsUrl, await gateway.ticket('alice'), { headers: { Origin: APP_ORIGIN } });
    expect(await socket.next((frame) => frame.type === 'auth_ok')).toMatchObject({ user: 'alice' });
    socket.close();
  });
});

describe('oversized and numerous headers', () => {
  const manyHeaders = (count: number, value: string) =>
    Object.fromEntries(Array.from({ length: count }, (_, i) => [`x-h${i}`, value]));

  it.each([
    ['3,000 headers (36 KB)', 431, () => upgrade([SUBPROTOCOL], { headers: manyHeaders(3_000, 'v') })],
    ['one 64 KiB header', 431, () => upgrade([SUBPROTOCOL], { headers: { 'x-big': 'v'.repeat(64 * 1024) } })],
    ['a 1 MB Sec-WebSocket-Protocol', 431, () => upgrade([SUBPROTOCOL, ticketEntry('t'.repeat(1024 * 1024))])],
    ['a 1 MB query string', 431, () => upgrade([SUBPROTOCOL], { path: `/ws?ticket=${'t'.repeat(1024 * 1024)}` })],
    ['1,500 small headers (under the 16 KiB limit)', 401, () => upgrade([SUBPROTOCOL], { headers: manyHeaders(1_500, '') })],
  ])('answers %s with a fast %i and keeps serving', async (_name, status, send) => {
    await onlyCanaryLeft();
    const answer = await send();
    expect(answer.status).toBe(status);
    // Loose, to survive a loaded CI box: the point is an answer, not a hang until a timeout.
    expect(answer.ms).toBeLessThan(2_000);
    expect((await gateway.health()).connections).toBe(1);
    await canary.assertAlive();
  });
});

describe('malformed Sec-WebSocket-Protocol', () => {
  it.each<[string, (ticket: string, jwt: string) => { protocols: string[]; path?: string }]>([
    ['no Sec-WebSocket-Protocol header', () => ({ protocols: [] })],
    ['another subprotocol only', () => ({ protocols: ['graphql-ws'] })],
    ['authsocket.v1 in upper case', (ticket) => ({ protocols: ['AUTHSOCKET.V1', ticketEntry(ticket)] })],
    ['two ticket entries', (ticket) => ({ protocols: [SUBPROTOCOL, ticketEntry(ticket), ticketEntry(ticket)] })],
    ['a ticket entry and a ticket in the query string', (ticket) => ({ protocols: [SUBPROTOCOL, ticketEntry(ticket)], path: `/ws?ticket=${ticket}` })],
    ['an empty ticket entry', () => ({ protocols: [SUBPROTOCOL, 'ticket.'] })],
    ['a handshake token while that is off', (ticket, jwt) => ({ protocols: [SUBPROTOCOL, ticketEntry(ticket), `${TOKEN_PROTOCOL_PREFIX}${jwt}`] })],
    ['a resume entry that is not base64url JSON', (ticket) => ({ protocols: [SUBPROTOCOL, ticketEntry(ticket), `${RESUME_PROTOCOL_PREFIX}!!!`] })],
    ['a resume entry with a __proto__ key', (ticket) => ({
      protocols: [SUBPROTOCOL, ticketEntry(ticket), `${RESUME_PROTOCOL_PREFIX}${b64url('{"__proto__":{"epoch":"e","offset":1,"polluted":true}}')}`],
    })],
    ['two resume entries', (ticket) => ({ protocols: [SUBPROTOCOL, ticketEntry(ticket), `${RESUME_PROTOCOL_PREFIX}e30`, `${RESUME_PROTOCOL_PREFIX}e30`] })],
    ['authsocket.v1 offered twice', (ticket) => ({ protocols: [SUBPROTOCOL, SUBPROTOCOL, ticketEntry(ticket)] })],
    ['a non-token character in an entry', (ticket) => ({ protocols: [SUBPROTOCOL, ticketEntry(ticket), 'caf\u00e9'] })],
    ['empty entries between commas', (ticket) => ({ protocols: [SUBPROTOCOL, '', '', ticketEntry(ticket)] })],
  ])('refuses %s with 400, echoing no credential', async (_name, make) => {
    const ticket = await gateway.ticket('alice');
    const { protocols, path } = make(ticket, await gateway.token('alice'));
    const answer = await upgrade(protocols, path === undefined ? {} : { path });
    expect(answer.status).toBe(400);
    expect(answer.body.length).toBeLessThan(100);
    expect(answer.raw.toString('latin1')).not.toContain(ticket);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await canary.assertAlive();
  });
});

describe('per-address upgrade limit', () => {
  it('answers 429 with Retry-After after 300 upgrades from one address, and other addresses are unaffected', async () => {
    const address = '127.0.0.250';
    const answers = [];
    for (let i = 0; i < 300; i++) {
      answers.push(rawExchange(gateway.port, upgradeRequest(gateway.port), { localAddress: address }));
      if (i % 50 === 49) await Promise.all(answers.splice(0));
    }
    await Promise.all(answers);
    const limited = await rawExchange(gateway.port, upgradeRequest(gateway.port), { localAddress: address });
    expect(limited.status).toBe(429);
    expect(limited.head).toMatch(/\r\nRetry-After: 10(\r\n|$)/);
    expect(limited.body).toBe('too many requests');
    const other = await refusal(Client.open(gateway.wsUrl, { localAddress: '127.0.0.251' }));
    expect(other.status).toBe(401);
    clock.advance(10_000);
    expect((await rawExchange(gateway.port, upgradeRequest(gateway.port), { localAddress: address })).status).toBe(401);
    await canary.assertAlive();
  });
});
