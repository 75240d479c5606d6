import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
// Test-only import across packages: the redis package's real redis-server helper.
import { RedisServer } from '../../redis/test/redis-server.js';
import { API_KEY, connectAs, start, stopAll, type TestGateway } from './helpers.js';

/**
 * What the HTTP API answers when Redis cannot say whether a publish happened (504) or certainly
 * did not take it (503), against a real redis-server frozen with SIGSTOP or killed.
 */

const servers: RedisServer[] = [];
afterEach(stopAll);
afterAll(async () => {
  for (const server of servers) server.signal('SIGCONT');
  await Promise.all(servers.map((server) => server.stop()));
});

async function health(gateway: TestGateway, status: number, timeout = 10_000): Promise<void> {
  await vi.waitFor(async () => expect((await gateway.request('/healthz')).status).toBe(status), { timeout, interval: 50 });
}

async function withRedis(): Promise<{ redis: RedisServer; gateway: TestGateway }> {
  const redis = await RedisServer.start();
  servers.push(redis);
  const gateway = await start(['--demo', '--api-key', API_KEY, '--redis-url', redis.url, '--node-id', 'gw-r']);
  await health(gateway, 200);
  return { redis, gateway };
}

const push = (gateway: TestGateway, data: string, key?: string) =>
  gateway.request('/api/users/alice/messages', {
    apiKey: API_KEY,
    json: { data },
    ...(key === undefined ? {} : { headers: { 'idempotency-key': key } }),
  });

describe('publish outcomes through the HTTP API, with a real redis-server', () => {
  it('answers 504 outcome_unknown for a publish sent to a frozen Redis; the retry with the same key delivers once', async () => {
    const { redis, gateway } = await withRedis();
    const { client } = await connectAs(gateway, 'alice');

    redis.signal('SIGSTOP');
    const unknown = await push(gateway, 'invoice paid', 'invoice-7');
    redis.signal('SIGCONT');
    expect(unknown.status).toBe(504);
    expect(await unknown.json()).toEqual({ error: 'publish outcome unknown', code: 'outcome_unknown' });

    await health(gateway, 200);
    const retried = await push(gateway, 'invoice paid', 'invoice-7');
    expect(retried.status).toBe(200);
    // A later publication on the same stream comes after anything the frozen one turned into.
    expect((await push(gateway, 'marker')).status).toBe(200);
    await client.next((frame) => frame.type === 'message' && frame.data === 'marker', 10_000);
    expect(client.frames.filter((frame) => frame.type === 'message').map((frame) => frame.data)).toEqual([
      'invoice paid',
      'marker',
    ]);
  }, 30_000);

  it('answers 503 unavailable with Retry-After: 1 when Redis is down before the publish is sent', async () => {
    const { redis, gateway } = await withRedis();
    await redis.kill();
    await health(gateway, 503);
    const refused = await push(gateway, 'not sent', 'k-1');
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(await refused.json()).toEqual({ error: 'service unavailable', code: 'unavailable' });
  });
});
