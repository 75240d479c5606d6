import { RESUME_PROTOCOL_PREFIX, SUBPROTOCOL, TICKET_PROTOCOL_PREFIX } from '@authsocket/protocol';
import type { ManualClock } from '@authsocket/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Canary } from './helpers/canary.js';
import { Client, refusal } from './helpers/client.js';
import { type GatewayHandle, startTestGateway, wholeSecondClock } from './helpers/gateway.js';
import { b64url } from './helpers/tokens.js';

/**
 * Identity over time on the gateway process (ManualClock injected): nothing reaches a socket past
 * its token's exp, held messages never change hands, a ticket never outlives its JWT, and resume
 * is no back door into a topic the application refuses.
 */

let clock: ManualClock;
let gateway: GatewayHandle;
let canary: Canary;

beforeAll(async () => {
  clock = wholeSecondClock();
  gateway = await startTestGateway([], { clock });
  canary = await Canary.onGateway(gateway);
});
afterAll(async () => {
  canary.close();
  await gateway.close();
});

const pushTo = (user: string, data: unknown) => gateway.api(`/users/${user}/messages`, { data });

describe('after exp (--expiry-policy reauth, the default)', () => {
  it('holds every push to an expired socket and drops them for good when it reauthenticates as someone else (4403)', async () => {
    const alice = await Client.authenticated(gateway.wsUrl, await gateway.token('alice', { expiresIn: 60 }));
    clock.advance(60_000);
    await alice.next((frame) => frame.type === 'reauth_required' && frame.reason === 'expired');
    await pushTo('alice', 'for alice only');
    await alice.settle();
    expect(alice.messages()).toEqual([]);
    alice.send({ type: 'auth', token: await gateway.token('mallory') });
    expect(await alice.closedWithin()).toEqual({ code: 4403, reason: 'token is for a different user' });
    expect(alice.messages()).toEqual([]);
    await canary.assertAlive();
    expect(canary.client.messages()).not.toContain('for alice only');
  });

  it('closes 4419 once the grace passes without a reauth, having delivered nothing after exp', async () => {
    const alice = await Client.authenticated(gateway.wsUrl, await gateway.token('alice', { expiresIn: 60 }));
    clock.advance(60_000);
    await pushTo('alice', 'after exp');
    clock.advance(10_000);
    expect(await alice.closedWithin()).toEqual({ code: 4419, reason: 'reauth deadline missed' });
    expect(alice.messages()).toEqual([]);
    await canary.assertAlive();
  });

  it('refuses a reauth with an already expired token of the same user (4401), delivering nothing held', async () => {
    const alice = await Client.authenticated(gateway.wsUrl, await gateway.token('alice', { expiresIn: 60 }));
    const stale = await gateway.token('alice', { expiresIn: 60 });
    clock.advance(61_000);
    await pushTo('alice', 'held');
    alice.send({ type: 'auth', token: stale });
    expect(await alice.closedWithin()).toEqual({ code: 4401, reason: 'invalid token' });
    expect(alice.messages()).toEqual([]);
  });
});

describe('tickets', () => {
  it('never outlive the JWT they were issued for', async () => {
    const response = await gateway.ticketResponse(await gateway.token('alice', { expiresIn: 5 }));
    const { ticket, expiresAt } = (await response.json()) as { ticket: string; expiresAt: number };
    expect(expiresAt).toBe(clock.now() + 5_000);
    clock.advance(5_000);
    expect((await refusal(Client.withTicket(gateway.wsUrl, ticket))).status).toBe(401);
    await canary.assertAlive();
  });
});

describe('resume in demo mode (only chat:* topics may be read)', () => {
  let demo: GatewayHandle;

  beforeAll(async () => {
    demo = await startTestGateway(['--demo'], { clock });
  });
  afterAll(() => demo.close());

  it("cannot join a refused topic or read another user's stream, and says so with a bare recovered: false", async () => {
    const ticket = await demo.ticket('mallory');
    const resume = {
      'topic:admin': { epoch: 'x', offset: 0 },
      'user:alice': { epoch: 'x', offset: 0 },
      'topic:chat:lobby': { epoch: 'x', offset: 0 },
    };
    const mallory = await Client.open(demo.wsUrl, {
      protocols: [SUBPROTOCOL, `${TICKET_PROTOCOL_PREFIX}${ticket}`, `${RESUME_PROTOCOL_PREFIX}${b64url(resume)}`],
    });
    const ok = (await mallory.next((frame) => frame.type === 'auth_ok')) as { streams?: Record<string, unknown> };
    expect(ok.streams?.['topic:admin']).toEqual({ recovered: false });
    expect(ok.streams?.['user:alice']).toEqual({ recovered: false });
    expect(ok.streams?.['topic:chat:lobby']).toMatchObject({ recovered: false, offset: 0 });
    await demo.api('/topics/admin/messages', { data: 'admin only' });
    await demo.api('/users/alice/messages', { data: 'alice only' });
    await demo.api('/topics/chat:lobby/messages', { data: 'lobby' });
    await mallory.next((frame) => frame.type === 'message' && frame.data === 'lobby');
    expect(mallory.messages()).toEqual(['lobby']);
    mallory.close();
  });
});
