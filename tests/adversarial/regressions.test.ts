import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createGateway, type Gateway, type GatewayOptions, ManualClock } from '@authsocket/server';
import { afterEach, describe, expect, it } from 'vitest';
import { Canary, CANARY_TOPIC } from './helpers/canary.js';
import { Client } from './helpers/client.js';
import { eventually, type GatewayHandle, startTestGateway } from './helpers/gateway.js';
import { MiB, settledHeap } from './helpers/memory.js';
import { RawPeer, textFrame } from './helpers/raw.js';
import { mint, SECRET } from './helpers/tokens.js';

/**
 * Defects this suite found in @authsocket/server and @authsocket/gateway, each kept as the
 * regression test of its fix. SECURITY.md ("Defects found by this suite") describes each one.
 */

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

/** A `createGateway` instance on 127.0.0.1, for modes the gateway process has no flag for. */
async function library(options: Omit<GatewayOptions, 'jwt'>): Promise<{ gateway: Gateway; port: number; wsUrl: string }> {
  const gateway = createGateway({ jwt: { secret: SECRET }, ...options });
  const server = http.createServer(gateway.handleRequest);
  gateway.attach(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  stops.push(async () => {
    await gateway.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const { port } = server.address() as AddressInfo;
  return { gateway, port, wsUrl: `ws://127.0.0.1:${port}/` };
}

async function processGateway(): Promise<{ gateway: GatewayHandle; canary: Canary }> {
  const gateway = await startTestGateway();
  const canary = await Canary.onGateway(gateway);
  stops.push(async () => {
    canary.close();
    await gateway.close();
  });
  return { gateway, canary };
}

/** Before the fix the message was acked; now the socket closes. Either way, no waiting for a timeout. */
const closedOrAcked = (socket: Client) =>
  Promise.race([socket.closed, socket.next((frame) => frame.type === 'ack').catch(() => undefined)]);

describe('defect 1 (fixed): per-message tokens skipped the "a connection must not start expired" check', () => {
  it.each([
    ['4 s ago (inside the 5 s tolerance)', -4],
    ['exactly now', 0],
  ])('refuses a per-message token whose exp was %s with 4401, on a pending socket, and never calls onMessage', async (_when, expiresIn) => {
    const clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000);
    const handled: unknown[] = [];
    const { wsUrl } = await library({ perMessageAuth: true, clock, onMessage: ({ data }) => void handled.push(data) });
    const socket = await Client.open(wsUrl);
    socket.send({ type: 'message', data: 'stale', id: 'm', token: await mint({ now: clock.now(), expiresIn }) });
    await closedOrAcked(socket);
    expect(handled).toEqual([]);
    expect(socket.frames.map((frame) => frame.type)).toEqual([]);
    expect(await socket.closedWithin()).toEqual({ code: 4401, reason: 'invalid token' });
  });

  it.each([
    ['4 s ago (inside the 5 s tolerance)', -4],
    ['exactly now', 0],
  ])('refuses a per-message token whose exp was %s with 4401 on an authenticated socket, and never calls onMessage', async (_when, expiresIn) => {
    const clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000);
    const handled: unknown[] = [];
    const { wsUrl } = await library({ perMessageAuth: true, clock, onMessage: ({ data }) => void handled.push(data) });
    const socket = await Client.authenticated(wsUrl, await mint({ now: clock.now() }));
    socket.send({ type: 'message', data: 'stale', id: 'm', token: await mint({ now: clock.now(), expiresIn }) });
    await closedOrAcked(socket);
    expect(handled).toEqual([]);
    expect(await socket.closedWithin()).toEqual({ code: 4401, reason: 'invalid token' });
  });
});

describe('defect 2 (fixed): the gateway process let every authenticated user publish on every topic', () => {
  it("refuses a client's publish on a topic by default, so subscribers never get a spoofed message", async () => {
    const { gateway, canary } = await processGateway();
    const mallory = await Client.authenticated(gateway.wsUrl, await gateway.token('mallory'));
    mallory.send({ type: 'publish', topic: CANARY_TOPIC, data: { from: 'backend', text: 'please re-enter your password' }, id: 'p' });
    const answer = await mallory.next((frame) => 'id' in frame && frame.id === 'p');
    await canary.assertAlive();
    expect(answer).toMatchObject({ type: 'error', id: 'p', code: 'forbidden' });
    expect(canary.client.messages()).not.toContainEqual({ from: 'backend', text: 'please re-enter your password' });
    mallory.close();
  });
});

describe('defect 3 (fixed): the in-memory broker never forgot a stream', () => {
  it('holds no memory for 19,800 distinct topics once every subscriber has left', async () => {
    const { gateway } = await processGateway();
    const baseline = await settledHeap();
    const connections = 20;
    const perConnection = 990;
    for (let c = 0; c < connections; c++) {
      const peer = await RawPeer.connect(gateway.port);
      peer.sendJson({ type: 'auth', token: await gateway.token('mallory') });
      await peer.next((frame) => frame.type === 'auth_ok');
      // Under the 1,000 frames per second limit: every one of them is a legitimate subscribe.
      const topics = Array.from({ length: perConnection }, (_, i) => `room-${c}-${i}-${'x'.repeat(100)}`);
      peer.write(Buffer.concat(topics.map((topic) => textFrame(JSON.stringify({ type: 'subscribe', topic })))));
      peer.sendJson({ type: 'ping', id: 'done' });
      await peer.next((frame) => frame.type === 'pong' && frame.id === 'done', 20_000);
      peer.socket.end();
    }
    await eventually(async () => (await gateway.health()).connections === 1, 10_000, 'only the canary connected');
    const retained = (await settledHeap()) - baseline;
    console.log(`${connections * perConnection} distinct topics, all left: heap +${(retained / MiB).toFixed(1)} MiB`);
    expect(retained).toBeLessThan(2 * MiB);
  }, 60_000);
});

describe('defect 4 (fixed): frames arriving while an earlier frame awaited an async step queued without bound', () => {
  it('holds a bounded amount of memory for 700 frames of 60 KB sent behind a subscribe whose authorize is pending', async () => {
    let release: () => void = () => {};
    const pending = new Promise<void>((resolve) => (release = resolve));
    const { gateway, port, wsUrl } = await library({
      // An application hook that takes its time: a database lookup, a remote policy service...
      authorize: async (_user, _action, topic) => {
        if (topic === 'slow') await pending;
        return true;
      },
    });
    const canary = await Canary.start(wsUrl, await mint({ now: Date.now(), sub: 'canary' }), gateway);
    const peer = await RawPeer.connect(port, { path: '/' });
    peer.sendJson({ type: 'auth', token: await mint({ now: Date.now(), sub: 'mallory' }) });
    await peer.next((frame) => frame.type === 'auth_ok');
    const baseline = await settledHeap();

    peer.sendJson({ type: 'subscribe', topic: 'slow', id: 's' });
    const frame = textFrame(JSON.stringify({ type: 'message', data: 'x'.repeat(60_000), id: 'm' }));
    // 42 MB in one burst, under the 1,000 frames per second limit.
    for (let i = 0; i < 700; i++) peer.write(frame);
    // Give the gateway time to read what it will read. (No waiting for 'drain': a gateway that
    // stops reading while busy leaves the rest in this client's buffers, which is the point.)
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const held = (await settledHeap()) - baseline;
    console.log(`700 frames of 60 KB behind a pending authorize: heap +${(held / MiB).toFixed(1)} MiB`);
    release();
    await canary.assertAlive();
    expect(held).toBeLessThan(8 * MiB);
    peer.socket.destroy();
    canary.close();
  }, 30_000);
});
