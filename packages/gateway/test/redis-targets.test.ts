import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
// Test-only imports across packages: the redis package's real redis-server, Cluster and Sentinel helpers.
import { RedisServer } from '../../redis/test/redis-server.js';
import { RedisCluster, SentinelSet } from '../../redis/test/redis-topologies.js';
import { API_KEY, connectAs, start, stopAll, type TestGateway } from './helpers.js';

/**
 * The three Redis targets of `authsocket serve`, each against real redis-server processes: the
 * node reports ready in `/healthz` under its `--node-id`, and a ticketed connection and a push work.
 */

const PASSWORD = 'redis-pass-of-the-test';
const servers: { stop(): Promise<void> }[] = [];

afterEach(stopAll);
afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
});

async function ready(gateway: TestGateway): Promise<Record<string, unknown>> {
  return vi.waitFor(
    async () => {
      const health = await gateway.request('/healthz');
      expect(health.status).toBe(200);
      return (await health.json()) as Record<string, unknown>;
    },
    { timeout: 10_000, interval: 50 },
  );
}

/** A ticketed socket (tickets live in Redis) and a push to it through the API. */
async function roundTrip(gateway: TestGateway): Promise<void> {
  const { client } = await connectAs(gateway, 'alice');
  const pushed = await gateway.request('/api/users/alice/messages', { apiKey: API_KEY, json: { data: { n: 1 } } });
  expect(pushed.status).toBe(200);
  await client.next((frame) => frame.type === 'message');
  client.close();
}

describe('Redis targets from the command line', () => {
  it('authenticates with --redis-password, names the node everywhere and never logs the password', async () => {
    const redis = await RedisServer.start(['--requirepass', PASSWORD]);
    servers.push(redis);
    const gateway = await start(
      ['--demo', '--api-key', API_KEY, '--log-level', 'trace', '--redis-url', redis.url, '--node-id', 'gw-a'],
      { env: { AUTHSOCKET_REDIS_PASSWORD: PASSWORD } },
    );
    expect(await ready(gateway)).toMatchObject({ status: 'ok', broker: 'ready', node: 'gw-a' });
    await roundTrip(gateway);
    await gateway.close();

    const records = gateway.logs.records;
    expect(records.find((record) => record.msg === 'configuration')).toMatchObject({
      config: { redisPassword: '[redacted]', nodeId: 'gw-a' },
    });
    expect(records.length).toBeGreaterThan(5);
    for (const record of records) expect(record.node).toBe('gw-a');
    expect(gateway.logs.text).not.toContain(PASSWORD);
  });

  it('connects to a Redis Cluster from --redis-cluster-nodes', async () => {
    const cluster = await RedisCluster.start(3);
    servers.push(cluster);
    const seeds = cluster.nodes.map((node) => `127.0.0.1:${node.port}`).join(',');
    const gateway = await start(['--demo', '--api-key', API_KEY, '--redis-cluster-nodes', seeds]);
    expect(await ready(gateway)).toMatchObject({ broker: 'ready' });
    await roundTrip(gateway);
  }, 30_000);

  it('finds the master through --redis-sentinels and --redis-sentinel-name', async () => {
    const set = await SentinelSet.start(1, 'authsocket-test');
    servers.push(set);
    const gateway = await start([
      '--demo',
      '--api-key',
      API_KEY,
      '--redis-sentinels',
      set.addresses.join(','),
      '--redis-sentinel-name',
      'authsocket-test',
    ]);
    expect(await ready(gateway)).toMatchObject({ broker: 'ready' });
    await roundTrip(gateway);
  }, 30_000);
});
