import { SUBPROTOCOL, TICKET_PROTOCOL_PREFIX } from '@authsocket/protocol';
import { ManualClock } from '@authsocket/server';
import { afterEach, describe, expect, it } from 'vitest';
import { API_KEY, connectAs, login, start, stopAll, type TestGateway, TestClient } from './helpers.js';

afterEach(stopAll);

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
    const gateway = await start(['--demo']);
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

  it('uses its own registry: two gateways in one process count separately', async () => {
    const first = await start(['--demo']);
    const second = await start(['--demo']);
    await connectAs(first, 'alice');
    expect(await samples(first)).toContain('authsocket_tickets_total{outcome="issued"} 1');
    expect((await samples(second)).some((line) => line.startsWith('authsocket_tickets_total'))).toBe(false);
  });
});
