import { execFileSync } from 'node:child_process';
import { SUBPROTOCOL, TICKET_PROTOCOL_PREFIX } from '@authsocket/protocol';
import { ManualClock } from '@authsocket/server';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
// Test-only import across packages: the redis package's real redis-server helper.
import { RedisServer } from '../../redis/test/redis-server.js';
import { API_KEY, connectAs, login, SECRET, start, stopAll, type TestGateway, TestClient } from './helpers.js';
import { TcpRelay } from './tcp-relay.js';

afterEach(stopAll);
const stoppable: { stop(): Promise<void> }[] = [];
afterAll(async () => {
  await Promise.all(stoppable.map((part) => part.stop()));
});

async function metrics(gateway: TestGateway): Promise<string> {
  const response = await gateway.request('/metrics');
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return response.text();
}

/** The sample lines of the exposition text, without HELP/TYPE comments. */
async function samples(gateway: TestGateway): Promise<string[]> {
  return (await metrics(gateway)).split('\n').filter((line) => line !== '' && !line.startsWith('#'));
}

describe('GET /metrics', () => {
  it('counts an issued ticket and failed ticket requests by stage and reason', async () => {
    const gateway = await start(['--demo', '--node-id', 'gw-metrics']);
    const { ticket } = await connectAs(gateway, 'alice');
    const bearer = (value: string) => ({ method: 'POST', headers: { authorization: value } });
    expect((await gateway.request('/auth/ticket', bearer('Bearer not-a-jwt'))).status).toBe(401);
    expect((await gateway.request('/auth/ticket', { method: 'POST' })).status).toBe(401);

    const lines = await samples(gateway);
    expect(lines).toContain('authsocket_tickets_total{outcome="issued"} 1');
    expect(lines).toContain('authsocket_tickets_total{outcome="redeemed"} 1');
    expect(lines).toContain('authsocket_auth_failures_total{stage="ticket_endpoint",reason="malformed"} 1');
    expect(lines).toContain('authsocket_auth_failures_total{stage="ticket_endpoint",reason="missing"} 1');
    expect(lines).toContain('authsocket_authentications_total{method="ticket"} 1');
    expect(lines).toContain('authsocket_connections 1');
    expect(lines).toContain('authsocket_registry_connections{node="gw-metrics"} 1');

    // The same ticket again: single use.
    const replay = new TestClient(gateway.wsUrl, [SUBPROTOCOL, `${TICKET_PROTOCOL_PREFIX}${ticket}`]);
    await replay.closed;
    expect(await samples(gateway)).toContain('authsocket_tickets_total{outcome="rejected"} 1');
  });

  it('counts closes by code and API requests by route and status', async () => {
    const gateway = await start(['--demo', '--api-key', API_KEY]);
    const { client } = await connectAs(gateway, 'bob');
    await gateway.request('/api/users/bob/revoke', { apiKey: API_KEY, method: 'POST' });
    await client.closed;
    await gateway.request('/api/broadcast', { apiKey: 'wrong-key-but-long-enough', json: { data: 1 } });

    await expect.poll(() => samples(gateway)).toContain('authsocket_connections_closed_total{code="4403"} 1');
    const lines = await samples(gateway);
    expect(lines).toContain('authsocket_connections 0');
    expect(lines).toContain('authsocket_api_requests_total{route="/users/:user/revoke",status="200"} 1');
    expect(lines).toContain('authsocket_api_requests_total{route="unmatched",status="401"} 1');
  });

  it('measures expiry, held connections and reauth latency on an injected clock', async () => {
    // On a whole second, so the token's `exp` (whole seconds) is exactly 120 s away.
    const clock = new ManualClock(Math.ceil(Date.now() / 1000) * 1000);
    const gateway = await start(['--demo'], { clock });
    const { client } = await connectAs(gateway, 'alice');

    clock.advance(120_000); // the demo token's lifetime: warned, then expired and held
    await client.next((frame) => frame.type === 'reauth_required' && frame.reason === 'expired');
    let lines = await samples(gateway);
    expect(lines).toContain('authsocket_expiries_total{policy="reauth"} 1');
    expect(lines).toContain('authsocket_held_connections 1');
    expect(lines).toContain('authsocket_held_messages 0');
    const push = await fetch(`${gateway.url}/api/users/alice/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gateway.generatedApiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ data: 'held while expired' }),
    });
    expect(push.status).toBe(200);
    expect(await samples(gateway)).toContain('authsocket_held_messages 1');

    clock.advance(1_500);
    client.send({ type: 'auth', token: await login(gateway, 'alice') });
    await client.next((frame) => frame.type === 'auth_ok' && client.frames.filter((f) => f.type === 'auth_ok').length === 2);
    lines = await samples(gateway);
    expect(lines).toContain('authsocket_reauthentications_total{when="after_expiry"} 1');
    expect(lines).toContain('authsocket_reauth_latency_seconds_bucket{le="1"} 0');
    expect(lines).toContain('authsocket_reauth_latency_seconds_bucket{le="2.5"} 1');
    expect(lines).toContain('authsocket_reauth_latency_seconds_sum 1.5');
    expect(lines).toContain('authsocket_held_connections 0');
    expect(lines).toContain('authsocket_held_messages 0');
  });

  it('names the node and reports an in-memory broker as ready', async () => {
    const gateway = await start(['--demo', '--node-id', 'gw-m']);
    const lines = await samples(gateway);
    expect(lines).toContain('authsocket_node_info{node="gw-m"} 1');
    expect(lines).toContain('authsocket_broker_status{status="ready"} 1');
    expect(lines).toContain('authsocket_broker_status{status="reconnecting"} 0');
    expect(lines).toContain('authsocket_stream_gap_closes_total 0');
  });

  it('uses its own registry: two gateways in one process count separately', async () => {
    const first = await start(['--demo']);
    const second = await start(['--demo']);
    await connectAs(first, 'alice');
    expect(await samples(first)).toContain('authsocket_tickets_total{outcome="issued"} 1');
    expect((await samples(second)).some((line) => line.startsWith('authsocket_tickets_total'))).toBe(false);
  });
});

describe('GET /metrics with Redis', () => {
  /** Polls until `/metrics` has every one of `expected` lines. */
  const eventually = (gateway: TestGateway, expected: string[], timeout = 10_000) =>
    vi.waitFor(async () => expect(await samples(gateway)).toEqual(expect.arrayContaining(expected)), { timeout, interval: 50 });
  const healthy = (gateway: TestGateway, status: number) =>
    vi.waitFor(async () => expect((await gateway.request('/healthz')).status).toBe(status), { timeout: 10_000, interval: 50 });

  it("counts the broker's link states, control messages and their lag, resyncs, gap repairs, new epochs and 4009 closes", async () => {
    const redis = await RedisServer.start();
    stoppable.push(redis);
    // Node B reaches Redis through a relay that can be frozen; node A directly.
    const relay = await TcpRelay.start({ host: '127.0.0.1', port: redis.port });
    stoppable.push(relay);
    const args = ['--demo', '--jwt-secret', SECRET, '--api-key', API_KEY];
    const a = await start([...args, '--redis-url', redis.url, '--node-id', 'gw-a']);
    const b = await start([...args, '--redis-url', relay.url, '--node-id', 'gw-b']);
    await healthy(a, 200);
    await healthy(b, 200);
    const push = async (data: string) =>
      expect((await a.request('/api/users/alice/messages', { apiKey: API_KEY, json: { data } })).status).toBe(200);
    const received = (client: TestClient) => client.frames.filter((frame) => frame.type === 'message').map((frame) => frame.data);

    const { client } = await connectAs(b, 'alice');
    await push('one');
    await client.next((frame) => frame.type === 'message');
    expect(await samples(b)).toEqual(
      expect.arrayContaining(['authsocket_node_info{node="gw-b"} 1', 'authsocket_broker_status{status="ready"} 1']),
    );

    // A revocation on A reaches B as a control message.
    expect((await a.request('/api/users/bob/revoke', { apiKey: API_KEY, method: 'POST' })).status).toBe(200);
    await eventually(b, ['authsocket_broker_control_messages_total 1', 'authsocket_broker_control_lag_seconds_count 1']);

    // B's link frozen: its liveness PING notices, and B misses what A publishes meanwhile.
    relay.freeze();
    await healthy(b, 503);
    await eventually(b, ['authsocket_broker_status{status="reconnecting"} 1', 'authsocket_broker_status{status="ready"} 0']);
    // Both of B's links (command and subscriber) dropped, each by its own PING: else the bytes held in
    // the relay would reach a subscriber still open after the thaw, and nothing would be missed.
    for (let attempt = 0; attempt < 200 && !relay.frozenLinksDropped; attempt++) await new Promise((resolve) => setTimeout(resolve, 25));
    expect(relay.frozenLinksDropped).toBe(true);
    await push('two');
    await push('three');
    relay.thaw();
    await healthy(b, 200);
    await eventually(b, ['authsocket_broker_resyncs_total 1', 'authsocket_broker_status_changes_total{status="reconnecting"} 1']);

    // The next publication shows B the skipped offsets: repaired from history, in order.
    await push('four');
    await client.next((frame) => frame.type === 'message' && frame.data === 'four');
    expect(received(client)).toEqual(['one', 'two', 'three', 'four']);
    await eventually(b, [
      'authsocket_broker_gap_repairs_total 1',
      'authsocket_broker_gap_messages_total{outcome="recovered"} 2',
      'authsocket_broker_gap_messages_total{outcome="lost"} 0',
    ]);

    // Redis loses its data: the stream starts a new epoch, and alice's socket must resume (4009).
    execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', String(redis.port), 'flushall'], { timeout: 5_000 });
    await push('five');
    expect((await client.closed).code).toBe(4009);
    await eventually(b, ['authsocket_broker_epoch_changes_total 1', 'authsocket_stream_gap_closes_total 1']);
  }, 30_000);
});
