import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCli } from '../helpers.js';
import { envCount, Resources, sleep, until, within } from './harness/cleanup.js';
import { checkStream, ProtocolClient, RecordingClient, streamEvents } from './harness/clients.js';
import { GatewayNode } from './harness/gateway-node.js';
import { RedisServer } from './harness/redis.js';
import { TcpRelay } from './harness/relay.js';

/**
 * Issue 14, scenario 1: a `subscribe` for a topic the socket already reads, while a publisher runs,
 * one node on a real Redis. Every position exactly once, in order — or a `recovered:false` for that
 * stream. Soak: MULTINODE_PUBLISHES, MULTINODE_RESUBSCRIBES, MULTINODE_CUTS (scripts/soak.sh).
 */

const PUBLISHES = envCount('MULTINODE_PUBLISHES', 400);
const RESUBSCRIBES = envCount('MULTINODE_RESUBSCRIBES', 30);
const CUTS = envCount('MULTINODE_CUTS', 10);
/** Each test's time budget grows with the soak counts (about 5 ms per publish, 0.5 s per cut or re-subscribe). */
const BUDGET_MS = 30_000 + PUBLISHES * 10 + (CUTS + RESUBSCRIBES) * 500;

const resources = new Resources();
let node: GatewayNode;

/** Publishes `count` messages on `topic` through the node's API one after another; every answer must be 200. */
async function publishAll(topic: string, count: number, gapMs = 2): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 1; i <= count; i++) {
    statuses.push((await node.publish(topic, i)).status);
    if (gapMs > 0) await sleep(gapMs);
  }
  return statuses;
}

beforeAll(async () => {
  buildCli();
  const redis = resources.add(await RedisServer.start(), (server) => server.stop());
  node = resources.add(await GatewayNode.start({ name: 'A', redis: ['--redis-url', redis.url] }), (started) => started.kill());
  await until('node A ready', async () => (await node.health()).status === 200, { timeoutMs: 10_000 });
}, 60_000);

afterAll(() => resources.disposeAll());

describe('scenario 1: re-subscribing to a topic while a publisher runs (one node, Redis)', () => {
  it(`delivers all ${PUBLISHES} publications once each, in order, to a raw client that re-subscribes ${RESUBSCRIBES} times meanwhile`, async () => {
    const topic = 'resubscribe-raw';
    const client = resources.add(await ProtocolClient.authenticated(node.wsUrl, 'rosa'), (c) => c.terminate());
    await client.subscribe(topic);
    const publishing = publishAll(topic, PUBLISHES);
    // Spread over the publisher's run; each waits for its ack, so at most one is in flight.
    for (let i = 0; i < RESUBSCRIBES; i++) {
      await client.subscribe(topic, `again-${i}`);
      await sleep(40);
    }
    expect((await publishing).filter((status) => status !== 200)).toEqual([]);
    await until('last publication arrives', () => client.messages(`topic:${topic}`).some((m) => m.offset === PUBLISHES), { timeoutMs: 5_000 }).catch(() => undefined);
    await client.settle();

    const report = checkStream(streamEvents(client, `topic:${topic}`));
    expect(report).toMatchObject({ missing: 0, duplicates: 0, outOfOrder: 0 });
    // Nothing was excused either: the socket never left, so a recovered:false would itself be a gap.
    expect(client.messages(`topic:${topic}`).map((m) => m.offset)).toEqual(Array.from({ length: PUBLISHES }, (_, i) => i + 1));
  }, BUDGET_MS);

  it(`gives an @authsocket/client whose TCP link is cut ${CUTS} times every publication once in order, or recovered:false for the stream`, async () => {
    const topic = 'resubscribe-client';
    const relay = resources.add(await TcpRelay.start({ host: '127.0.0.1', port: node.port }), (r) => r.close());
    const recording = new RecordingClient(relay.url('ws', node.wsPath), 'sam');
    resources.add(recording, (r) => r.client.close());
    recording.client.connect();
    await within('first subscribe', recording.client.topic(topic).subscribe(), 5_000);

    const publishing = publishAll(topic, PUBLISHES);
    for (let cut = 0; cut < CUTS; cut++) {
      // Cut only a live, authenticated link, so each cut lands mid-stream, not mid-handshake.
      await until('client authenticated again', () => recording.client.state === 'open', { timeoutMs: 5_000, intervalMs: 10 });
      await sleep(60 + Math.floor(Math.random() * 60));
      relay.cut();
    }
    expect((await publishing).filter((status) => status !== 200)).toEqual([]);
    const stream = `topic:${topic}`;
    await until('client reaches the last publication', () => recording.offsets(stream).at(-1) === PUBLISHES || recording.report(stream).notRecovered > 0, {
      timeoutMs: 10_000,
    }).catch(() => undefined);

    const report = recording.report(stream);
    expect(recording.closes.filter((code) => code === 1006).length).toBeGreaterThanOrEqual(CUTS);
    expect(report).toMatchObject({ missing: 0, duplicates: 0, outOfOrder: 0 });
    if (report.notRecovered === 0) {
      // Nothing excused: the client must have seen every offset, exactly 1..PUBLISHES.
      expect(recording.offsets(stream)).toEqual(Array.from({ length: PUBLISHES }, (_, i) => i + 1));
    } else {
      expect(report.last?.offset).toBe(PUBLISHES);
    }
  }, BUDGET_MS);
});
