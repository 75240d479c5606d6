import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Canary } from './helpers/canary.js';
import { type GatewayHandle, startTestGateway } from './helpers/gateway.js';
import { cpuMicros } from './helpers/memory.js';
import { RawPeer, textFrame } from './helpers/raw.js';

/**
 * Floods from one authenticated connection against the gateway process's defaults: 1,000 frames
 * per second and 10 `auth` frames per minute, then `4429`. CPU is measured with
 * `process.cpuUsage()` over the whole flood (this process runs both the gateway and the attacker,
 * so the bound is loose): what matters is a per-frame cost that stays small and flat, not the
 * wall clock.
 */

/** CPU per flooded frame that a cheap rejection stays far below (a JWT verification alone is ~30 µs). */
const MAX_CPU_MICROS_PER_FRAME = 40;

let gateway: GatewayHandle;
let canary: Canary;

beforeAll(async () => {
  gateway = await startTestGateway();
  canary = await Canary.onGateway(gateway);
});
afterAll(async () => {
  canary.close();
  await gateway.close();
});

async function authenticated(user = 'mallory'): Promise<RawPeer> {
  const peer = await RawPeer.connect(gateway.port);
  peer.sendJson({ type: 'auth', token: await gateway.token(user) });
  await peer.next((frame) => frame.type === 'auth_ok');
  return peer;
}

const types = (peer: RawPeer) => peer.messages.map((frame) => frame.type);

describe('auth floods', () => {
  it('answers 10 auth frames, then sends rate_limited and closes 4429 on the 11th', async () => {
    const peer = await RawPeer.connect(gateway.port);
    const token = await gateway.token('mallory');
    peer.write(Buffer.concat(Array.from({ length: 15 }, () => textFrame(JSON.stringify({ type: 'auth', token })))));
    expect(await peer.closed()).toEqual({ code: 4429, reason: 'rate limited' });
    expect(types(peer)).toEqual([...Array.from({ length: 10 }, () => 'auth_ok'), 'error']);
    const error = peer.messages.at(-1) as { retryAfter: number };
    expect(error).toMatchObject({ type: 'error', code: 'rate_limited', message: 'rate limited' });
    expect(error.retryAfter).toBeGreaterThan(0);
    expect(error.retryAfter).toBeLessThanOrEqual(60_000);
    await canary.assertAlive();
  });

  it('spends bounded CPU on 10,000 auth frames in one burst: at most 10 are verified', async () => {
    const token = await gateway.token('mallory');
    const burst = Buffer.concat(Array.from({ length: 10_000 }, () => textFrame(JSON.stringify({ type: 'auth', token }))));
    const peer = await RawPeer.connect(gateway.port);
    const micros = await cpuMicros(async () => {
      peer.write(burst);
      await peer.closed();
    });
    expect((await peer.closed())?.code).toBe(4429);
    expect(types(peer).filter((type) => type === 'auth_ok').length).toBeLessThanOrEqual(10);
    console.log(`auth flood: ${(micros / 10_000).toFixed(1)} µs CPU per frame`);
    expect(micros / 10_000).toBeLessThan(MAX_CPU_MICROS_PER_FRAME);
    await canary.assertAlive();
  });

  it('closes 4401 at the first of 999 auth frames with forged tokens, verifying at most 10 of them', async () => {
    // 999: under the frame rate limit, so the close is the forged token's own 4401.
    const forged = `${(await gateway.token('mallory')).slice(0, -4)}AAAA`;
    const burst = Buffer.concat(Array.from({ length: 999 }, () => textFrame(JSON.stringify({ type: 'auth', token: forged }))));
    const peer = await RawPeer.connect(gateway.port);
    const micros = await cpuMicros(async () => {
      peer.write(burst);
      await peer.closed();
    });
    expect(await peer.closed()).toEqual({ code: 4401, reason: 'invalid token' });
    expect(types(peer)).toEqual([]);
    console.log(`forged-token flood: ${(micros / 999).toFixed(1)} µs CPU per frame`);
    expect(micros / 999).toBeLessThan(MAX_CPU_MICROS_PER_FRAME);
    await canary.assertAlive();
  });
});

describe('message floods', () => {
  it('answers 1,000 pings in a second, then closes 4429 with a retryAfter hint, at a bounded CPU cost per frame', async () => {
    const burst = Buffer.concat(Array.from({ length: 20_000 }, (_, i) => textFrame(`{"type":"ping","id":"${i}"}`)));
    const peer = await authenticated();
    const micros = await cpuMicros(async () => {
      peer.write(burst);
      await peer.closed();
    });
    expect(await peer.closed()).toEqual({ code: 4429, reason: 'rate limited' });
    const answers = types(peer);
    // The auth frame spent one of the 1,000 of this window (when the flood started in the same second).
    expect(answers.filter((type) => type === 'pong').length).toBeGreaterThanOrEqual(999);
    expect(answers.filter((type) => type === 'pong').length).toBeLessThanOrEqual(1_000);
    expect(answers.at(-1)).toBe('error');
    console.log(`ping flood: ${(micros / 20_000).toFixed(1)} µs CPU per frame`);
    expect(micros / 20_000).toBeLessThan(MAX_CPU_MICROS_PER_FRAME);
    await canary.assertAlive();
  });

  it('delivers nothing of a publish flood beyond the rate limit to the canary topic', async () => {
    const burst = Buffer.concat(
      Array.from({ length: 3_000 }, (_, i) => textFrame(JSON.stringify({ type: 'publish', topic: 'flooded', data: i }))),
    );
    const peer = await authenticated();
    peer.write(burst);
    expect((await peer.closed())?.code).toBe(4429);
    await canary.assertAlive();
    expect(canary.client.messages().filter((data) => typeof data === 'number')).toEqual([]);
  });

  it('closes 4401 at the first frame of an unauthenticated flood, at a bounded CPU cost per frame', async () => {
    const burst = Buffer.concat(Array.from({ length: 20_000 }, () => textFrame('{"type":"publish","topic":"canary-room","data":"spoofed"}')));
    const peer = await RawPeer.connect(gateway.port);
    const micros = await cpuMicros(async () => {
      peer.write(burst);
      await peer.closed();
    });
    expect(await peer.closed()).toEqual({ code: 4401, reason: 'authenticate first' });
    console.log(`unauthenticated flood: ${(micros / 20_000).toFixed(1)} µs CPU per frame`);
    expect(micros / 20_000).toBeLessThan(MAX_CPU_MICROS_PER_FRAME);
    await canary.assertAlive();
    expect(canary.client.messages()).not.toContain('spoofed');
  });
});
