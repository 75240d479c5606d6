import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ManualClock } from '@authsocket/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Canary } from './helpers/canary.js';
import { eventually, type GatewayHandle, startTestGateway, wholeSecondClock } from './helpers/gateway.js';
import { MiB, settledHeap } from './helpers/memory.js';
import { RawPeer } from './helpers/raw.js';

/**
 * Sockets that open and never authenticate, against the gateway process with an injected
 * ManualClock: the auth deadline (10 s) passes only when the test moves the clock.
 *
 * `ulimit -n` here is 20,000 (hard limit too). The 10,000 idle sockets are held by a child process
 * (fixtures/idle-sockets.mjs), so this process holds only the gateway's 10,000 ends: no scaling down.
 */

const IDLE_SOCKETS = 10_000;
/** The gateway's per-address upgrade limit is 300 per 10 s: the child spreads its sockets over 40 loopback addresses. */
const SOURCE_ADDRESSES = 40;

let gateway: GatewayHandle;
let clock: ManualClock;
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

describe('unauthenticated sockets', () => {
  it('are closed 4408 at the deadline even when they keep pinging', async () => {
    const peer = await RawPeer.connect(gateway.port);
    for (let second = 1; second <= 9; second++) {
      clock.advance(1_000);
      peer.sendJson({ type: 'ping', id: String(second) });
      await peer.next((frame) => frame.type === 'pong' && frame.id === String(second));
    }
    clock.advance(1_000);
    expect(await peer.closed()).toEqual({ code: 4408, reason: 'authentication timed out' });
    await canary.assertAlive();
  });

  it(`are all closed 4408 at the deadline: ${IDLE_SOCKETS.toLocaleString('en')} of them, and memory returns to its baseline`, async () => {
    await eventually(async () => (await gateway.health()).connections === 1, 5_000, 'only the canary connected');
    const baseline = await settledHeap();

    const child: ChildProcess = fork(
      fileURLToPath(new URL('./fixtures/idle-sockets.mjs', import.meta.url)),
      [String(gateway.port), String(IDLE_SOCKETS), String(SOURCE_ADDRESSES), '200'],
      { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
    );
    try {
      const report = (type: string) =>
        new Promise<Record<string, unknown>>((resolve, reject) => {
          const onMessage = (message: Record<string, unknown>) => {
            if (message.type !== type) return;
            child.off('message', onMessage);
            resolve(message);
          };
          child.on('message', onMessage);
          child.once('exit', (code) => reject(new Error(`idle-socket child exited with ${code} before '${type}'`)));
        });
      const closing = report('closed');
      closing.catch(() => {});
      expect(await report('opened')).toEqual({ type: 'opened', opened: IDLE_SOCKETS, refused: {} });
      expect((await gateway.health()).connections).toBe(IDLE_SOCKETS + 1);
      const held = (await settledHeap()) - baseline;

      clock.advance(10_000);
      expect(await closing).toEqual({ type: 'closed', codes: { 4408: IDLE_SOCKETS } });
      await eventually(async () => (await gateway.health()).connections === 1, 10_000, 'the idle sockets to be released');

      const after = (await settledHeap()) - baseline;
      console.log(
        `${IDLE_SOCKETS} idle sockets: heap +${(held / MiB).toFixed(1)} MiB while open, +${(after / MiB).toFixed(1)} MiB after they closed`,
      );
      // The sockets cost well over 10 MiB while open; all of it must come back (allowing GC noise).
      expect(held).toBeGreaterThan(10 * MiB);
      expect(after).toBeLessThan(4 * MiB);
      await canary.assertAlive();
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 90_000);
});
