import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCli } from '../helpers.js';
import { Resources } from './harness/cleanup.js';
import { upgradeStatus } from './harness/clients.js';
import { GatewayNode } from './harness/gateway-node.js';
import { Haproxy } from './harness/balancers.js';
import { RedisServer } from './harness/redis.js';

/**
 * Issue 14, scenario 9: behind HAProxy (which adds X-Forwarded-For and connects from 127.0.0.1), a node
 * with `--trust-proxy 127.0.0.1/32` keys its per-address upgrade limit by the forwarded address, and
 * only from that trusted hop. Clients use distinct loopback source addresses.
 */

const LIMIT = 3;
const resources = new Resources();
let node: GatewayNode;
let proxy: Haproxy;
let startError: unknown;

beforeAll(async () => {
  buildCli();
  const redis = resources.add(await RedisServer.start(), (server) => server.stop());
  try {
    node = resources.add(
      await GatewayNode.start({
        name: 'T',
        redis: ['--redis-url', redis.url],
        args: ['--trust-proxy', '127.0.0.1/32', '--upgrade-rate-limit', `${LIMIT}/30s`],
      }),
      (n) => n.kill(),
    );
  } catch (error) {
    // Reported by each test, so the reason (e.g. an unknown option) is read where it fails.
    startError = error;
    return;
  }
  proxy = resources.add(await Haproxy.start([{ name: 'T', host: '127.0.0.1', port: node.port }]), (p) => p.stop());
}, 60_000);

afterAll(() => resources.disposeAll());

const from = (localAddress: string, headers: Record<string, string> = {}) => ({ localAddress, headers });

describe('--trust-proxy behind HAProxy', () => {
  it(`limits upgrades to ${LIMIT} per forwarded client address, not per proxy, when the proxy is trusted`, async () => {
    expect(startError).toBeUndefined();
    const url = `${proxy.wsUrl}${node.wsPath}`;
    const first: number[] = [];
    for (let i = 0; i <= LIMIT; i++) first.push(await upgradeStatus(url, undefined, from('127.0.0.2')));
    expect(first).toEqual([...Array.from({ length: LIMIT }, () => 101), 429]);
    // Same proxy, another client: its own budget.
    expect(await upgradeStatus(url, undefined, from('127.0.0.3'))).toBe(101);
    // A client cannot borrow or burn someone else's budget by sending X-Forwarded-For itself:
    // HAProxy appends the address it saw, and only that last, trusted hop counts.
    expect(await upgradeStatus(url, undefined, from('127.0.0.3', { 'x-forwarded-for': '127.0.0.9' }))).toBe(101);
    expect(await upgradeStatus(url, undefined, from('127.0.0.4', { 'x-forwarded-for': '127.0.0.2' }))).toBe(101);
  });

  it('ignores X-Forwarded-For from a client that is not a trusted proxy', async () => {
    expect(startError).toBeUndefined();
    // Straight to the node from 127.0.0.5, a different spoofed address each time: still one address.
    const statuses: number[] = [];
    for (let i = 0; i <= LIMIT; i++) statuses.push(await upgradeStatus(node.wsUrl, undefined, from('127.0.0.5', { 'x-forwarded-for': `10.9.9.${i}` })));
    expect(statuses).toEqual([...Array.from({ length: LIMIT }, () => 101), 429]);
  });
});
