import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { createGateway, type Gateway } from '@authsocket/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Canary } from './helpers/canary.js';
import { attackerAddress, Client } from './helpers/client.js';
import { eventually, type GatewayHandle, startTestGateway } from './helpers/gateway.js';
import { liveBuffers, MiB, settledHeap } from './helpers/memory.js';
import { encodeFrame, RawPeer, textFrame, upgradeRequest } from './helpers/raw.js';
import { mint, SECRET } from './helpers/tokens.js';

/** Peers that stop reading, stop answering or vanish mid-frame. */

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

const onlyCanaryLeft = () => eventually(async () => (await gateway.health()).connections === 1, 5_000, 'only the canary connected');

describe('a client that never reads', () => {
  it('is closed 4008 once its outbound buffer passes 1 MiB, long before the pushes to it add up', async () => {
    const peer = await RawPeer.connect(gateway.port);
    peer.sendJson({ type: 'auth', token: await gateway.token('sloth') });
    await peer.next((frame) => frame.type === 'auth_ok');
    peer.stopReading();
    const closedBefore = await gateway.metric('authsocket_connections_closed_total{code="4008"}');
    const chunk = 'x'.repeat(32 * 1024);
    const baseline = liveBuffers();
    let peak = 0;
    let pushed = 0;
    // The kernel's socket buffers absorb several MB first (tcp_rmem autotunes up to 32 MiB here).
    // Unbounded, the gateway's queue would then grow with every push; bounded, it is cut at 1 MiB,
    // and pushes report `deliveredLocally: 0` once the socket is gone (1 s after the 4008 close).
    for (; pushed < 2_000; pushed++) {
      const { deliveredLocally } = await gateway.api('/users/sloth/messages', { data: chunk });
      if (deliveredLocally === 0) break;
      // Live Buffers after a full collection: what the gateway holds for the peer (sampled: GC is slow).
      if (pushed % 20 === 0) peak = Math.max(peak, liveBuffers() - baseline);
    }
    expect(pushed).toBeLessThan(2_000);
    await eventually(async () => (await gateway.metric('authsocket_connections_closed_total{code="4008"}')) === closedBefore + 1);
    await onlyCanaryLeft();
    const released = liveBuffers() - baseline;
    console.log(
      `never-reading client: ${((pushed * chunk.length) / MiB).toFixed(1)} MiB pushed before it was gone; ` +
        `live buffers peaked at +${(peak / MiB).toFixed(2)} MiB, +${(released / MiB).toFixed(2)} MiB once released`,
    );
    // The gateway's bound is maxBufferedBytes (1 MiB) plus a frame; the rest is GC sampling noise.
    expect(peak).toBeLessThan(6 * MiB);
    // Released down to noise: the pushes' own buffers (tens of MB) are long gone; a MiB or so of
    // unrelated Buffers comes and goes with GC timing when other test files load the machine.
    expect(released).toBeLessThan(2 * MiB);
    peer.socket.destroy();
    await onlyCanaryLeft();
    await canary.assertAlive();
  });
});

describe('a half-open peer (createGateway with a 100 ms heartbeat: the gateway process has no heartbeat flag and beats every 30 s)', () => {
  let library: Gateway;
  let server: http.Server;
  let port: number;

  beforeAll(async () => {
    library = createGateway({ jwt: { secret: SECRET }, heartbeatIntervalMs: 100 });
    server = http.createServer(library.handleRequest);
    library.attach(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await library.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('is terminated by the heartbeat once it stops answering pings, while a live peer stays', async () => {
    const live = await Client.authenticated(`ws://127.0.0.1:${port}/`, await mint({ now: Date.now(), sub: 'canary' }), { localAddress: '127.0.0.1' });
    const peer = await RawPeer.connect(port, { path: '/' });
    peer.answerPings = true;
    peer.sendJson({ type: 'auth', token: await mint({ now: Date.now(), sub: 'ghost' }) });
    await peer.next((frame) => frame.type === 'auth_ok');
    const closes: number[] = [];
    library.on('close', ({ code }) => closes.push(code));
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect(library.connectionCount('ghost')).toBe(1);

    // The peer goes silent: no pong, no FIN, as when its network vanishes.
    peer.answerPings = false;
    peer.stopReading();
    await eventually(() => library.connectionCount('ghost') === 0, 2_000, 'the heartbeat to terminate the silent peer');
    expect(closes).toEqual([1006]);
    expect(library.connectionCount()).toBe(1);
    expect(await library.sendToUser('canary', 'alive')).toBe(1);
    await live.next((frame) => frame.type === 'message' && frame.data === 'alive');
    peer.socket.destroy();
    live.close();
  });
});

describe('abrupt resets (TCP RST)', () => {
  it('leave no connection and no memory behind, at any point of the exchange, 200 times over', async () => {
    await onlyCanaryLeft();
    const token = await gateway.token('mallory');
    const auth = textFrame(JSON.stringify({ type: 'auth', token }));
    const big = encodeFrame({ payload: `{"type":"message","data":"${'x'.repeat(40_000)}"}` });
    /** Where in the exchange the reset lands. */
    const stages: Array<(peer: RawPeer) => Promise<void> | void> = [
      () => {},
      (peer) => peer.write(auth.subarray(0, 3)),
      (peer) => peer.write(auth.subarray(0, auth.length - 5)),
      async (peer) => {
        peer.write(auth);
        await peer.next((frame) => frame.type === 'auth_ok');
        peer.write(big.subarray(0, 20_000));
      },
      async (peer) => {
        peer.write(auth);
        await peer.next((frame) => frame.type === 'auth_ok');
        peer.sendJson({ type: 'subscribe', topic: 'canary-room', id: 's' });
        await peer.next((frame) => frame.type === 'ack');
        peer.write(big.subarray(0, 7));
      },
    ];
    const run = async (round: number) => {
      const peer = await RawPeer.connect(gateway.port);
      await stages[round % stages.length]?.(peer);
      peer.socket.resetAndDestroy();
    };
    await run(0);
    const baseline = await settledHeap();
    for (let round = 0; round < 200; round += 20) await Promise.all(Array.from({ length: 20 }, (_, i) => run(round + i)));
    await onlyCanaryLeft();
    const after = (await settledHeap()) - baseline;
    console.log(`200 resets: heap ${after >= 0 ? '+' : ''}${(after / MiB).toFixed(2)} MiB`);
    expect(after).toBeLessThan(2 * MiB);
    await canary.assertAlive();
    const fresh = await Client.authenticated(gateway.wsUrl, await gateway.token('alice'));
    await fresh.settle();
    fresh.close();
  });

  it('in the middle of the upgrade request, or right after it, leave no connection behind', async () => {
    const tickets = await Promise.all(Array.from({ length: 50 }, () => gateway.ticket('mallory')));
    await Promise.all(
      tickets.map(
        (ticket, i) =>
          new Promise<void>((resolve) => {
            const socket = net.connect({ port: gateway.port, host: '127.0.0.1', localAddress: attackerAddress() });
            socket.on('error', () => {});
            socket.on('close', () => resolve());
            socket.on('connect', () => {
              const request = upgradeRequest(gateway.port, { protocols: ['authsocket.v1', `ticket.${ticket}`] });
              // Half the requests are cut mid-headers, half right after the last byte, while the
              // gateway is between admission (redeeming the ticket) and the WebSocket handshake.
              socket.write(i % 2 === 0 ? request.slice(0, request.length / 2) : request);
              setImmediate(() => socket.resetAndDestroy());
            });
          }),
      ),
    );
    await onlyCanaryLeft();
    await canary.assertAlive();
  });
});
