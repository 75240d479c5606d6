import { RESUME_PROTOCOL_PREFIX, SUBPROTOCOL, TICKET_PROTOCOL_PREFIX } from '@authsocket/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// Test-only import across packages, as the gateway's own Redis tests do: the real redis-server helper.
import { RedisServer } from '../../packages/redis/test/redis-server.js';
import { Canary } from './helpers/canary.js';
import { Client, refusal } from './helpers/client.js';
import { eventually, type GatewayHandle, startTestGateway } from './helpers/gateway.js';
import { b64url } from './helpers/tokens.js';

/** Restarts under live sessions: never silent loss, never misdelivery, nothing left behind. */

type Position = { epoch: string; offset: number };
type Delivered = { data: unknown; stream?: string; offset?: number; epoch?: string };

const delivered = (client: Client) => client.frames.filter((frame) => frame.type === 'message') as unknown as Delivered[];
const streamsOf = async (client: Client) =>
  ((await client.next((frame) => frame.type === 'auth_ok')) as { streams?: Record<string, Record<string, unknown>> }).streams ?? {};
const resumeEntry = (positions: Record<string, Position>) => `${RESUME_PROTOCOL_PREFIX}${b64url(positions)}`;
/** Open handles that outlive a gateway if it leaks: listening servers, sockets, timers. */
const handles = () =>
  process.getActiveResourcesInfo().filter((name) => name === 'TCPServerWrap' || name === 'TCPSocketWrap' || name === 'Timeout').length;

describe('a gateway restart mid-session (in-memory history)', () => {
  it('reports recovered: false with a new epoch on resume, refuses pre-restart tickets, delivers to no one else, and leaks nothing', async () => {
    const handlesBefore = handles();
    const first = await startTestGateway();
    const port = first.port;
    const bob = await Canary.onGateway(first);
    const alice = await Client.withTicket(first.wsUrl, await first.ticket('alice'));
    await alice.next((frame) => frame.type === 'auth_ok');
    for (const n of [1, 2, 3]) await first.api('/users/alice/messages', { data: `before ${n}` });
    await alice.next((frame) => frame.type === 'message' && frame.data === 'before 3');
    const last = delivered(alice).at(-1) as Delivered;
    expect(last).toMatchObject({ stream: 'user:alice', offset: 3 });
    const position: Position = { epoch: last.epoch as string, offset: 3 };
    const unredeemed = await first.ticket('alice');
    const token = await first.token('alice');

    await first.close();
    expect(await alice.closed).toEqual({ code: 1001, reason: 'server shutting down' });
    expect(await bob.client.closed).toEqual({ code: 1001, reason: 'server shutting down' });
    // While it is down, a push fails loudly: the backend knows it was not delivered.
    await expect(first.api('/users/alice/messages', { data: 'while down' })).rejects.toThrow();

    const second = await startTestGateway([], { port });
    try {
      // Tickets lived in the old process's memory: refused, never honoured blindly.
      expect((await refusal(Client.withTicket(second.wsUrl, unredeemed))).status).toBe(401);

      const canary = await Canary.onGateway(second);
      const ticket = ((await (await second.ticketResponse(token)).json()) as { ticket: string }).ticket;
      const resumed = await Client.open(second.wsUrl, {
        protocols: [
          SUBPROTOCOL,
          `${TICKET_PROTOCOL_PREFIX}${ticket}`,
          resumeEntry({ 'user:alice': position, 'user:canary': { epoch: position.epoch, offset: 0 } }),
        ],
      });
      const streams = await streamsOf(resumed);
      expect(streams['user:alice']).toMatchObject({ recovered: false, offset: 0 });
      expect(streams['user:alice']?.epoch).not.toBe(position.epoch);
      // Someone else's stream yields nothing, not even its position.
      expect(streams['user:canary']).toEqual({ recovered: false });

      await second.api('/users/alice/messages', { data: 'after' });
      await resumed.next((frame) => frame.type === 'message' && frame.data === 'after');
      expect(delivered(resumed)).toEqual([{ type: 'message', data: 'after', stream: 'user:alice', offset: 1, epoch: streams['user:alice']?.epoch }]);
      await canary.assertAlive();
      expect(canary.client.messages()).not.toContain('after');
      expect(delivered(resumed).map((message) => message.data)).not.toContain('while down');
      canary.close();
      resumed.close();
    } finally {
      await second.close();
    }
    await eventually(() => handles() <= handlesBefore, 5_000, 'the gateways to release their servers, sockets and timers');
  });
});

describe('a Redis restart under a gateway process (--redis-url)', () => {
  let redis: RedisServer;
  let gateway: GatewayHandle;
  let canary: Canary;

  beforeAll(async () => {
    redis = await RedisServer.start();
    gateway = await startTestGateway(['--redis-url', redis.url]);
    await eventually(async () => (await fetch(`${gateway.url}/healthz`)).status === 200, 10_000, 'the broker to be ready');
    canary = await Canary.onGateway(gateway);
  });
  afterAll(async () => {
    canary.close();
    await gateway.close();
    await redis.stop();
  });

  it('fails closed while Redis is down, then resumes with recovered: false and delivers to no one else', async () => {
    const alice = await Client.withTicket(gateway.wsUrl, await gateway.ticket('alice'));
    await alice.next((frame) => frame.type === 'auth_ok');
    await gateway.api('/users/alice/messages', { data: 'before' });
    const before = (await alice.next((frame) => frame.type === 'message' && frame.data === 'before')) as unknown as Delivered;
    const unredeemed = await gateway.ticket('alice');
    const token = await gateway.token('alice');

    await redis.kill();
    await eventually(async () => (await fetch(`${gateway.url}/healthz`)).status === 503, 5_000, 'health to report the outage');
    // Fail closed at every door: no ticket issued or redeemed, no auth unchecked, no push pretending to succeed.
    expect((await gateway.ticketResponse(token)).status).toBe(503);
    expect((await refusal(Client.withTicket(gateway.wsUrl, unredeemed))).status).toBe(503);
    const unchecked = await Client.open(gateway.wsUrl);
    unchecked.send({ type: 'auth', token });
    expect(await unchecked.closedWithin(5_000)).toEqual({ code: 1011, reason: 'service unavailable' });
    await expect(gateway.api('/users/alice/messages', { data: 'lost' })).rejects.toThrow('answered 503');
    // Established sockets stay up.
    await alice.settle();
    await canary.client.settle();

    await redis.restart();
    await eventually(async () => (await fetch(`${gateway.url}/healthz`)).status === 200, 10_000, 'the broker to recover');
    // Redis lost its data: the ticket issued before is gone, and refused.
    expect((await refusal(Client.withTicket(gateway.wsUrl, unredeemed))).status).toBe(401);
    const resumed = await Client.open(gateway.wsUrl, {
      protocols: [
        SUBPROTOCOL,
        `${TICKET_PROTOCOL_PREFIX}${await gateway.ticket('alice')}`,
        resumeEntry({ 'user:alice': { epoch: before.epoch as string, offset: before.offset as number } }),
      ],
    });
    const streams = await streamsOf(resumed);
    expect(streams['user:alice']).toMatchObject({ recovered: false, offset: 0 });
    expect(streams['user:alice']?.epoch).not.toBe(before.epoch);
    await gateway.api('/users/alice/messages', { data: 'after' });
    await resumed.next((frame) => frame.type === 'message' && frame.data === 'after');
    expect(delivered(resumed).map((message) => message.data)).toEqual(['after']);
    // The socket from before the outage read the old epoch: it is told to resume (4009), never
    // handed the new epoch as if nothing had been lost.
    expect(await alice.closedWithin(5_000)).toEqual({ code: 4009, reason: 'stream gap: resume' });
    expect(delivered(alice).map((message) => message.data)).toEqual(['before']);
    expect(canary.client.messages()).not.toContain('after');
    // The canary read streams of the old epoch too: it would be told to resume at its next push.
    // A fresh one (a resumed client) is served as before.
    canary.close();
    canary = await Canary.onGateway(gateway);
    await canary.assertAlive();
    resumed.close();
    await eventually(async () => (await gateway.health()).connections === 1, 5_000, 'only the canary connected');
  });
});
