import { SUBPROTOCOL } from '@authsocket/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { API_KEY, connectAs, SECRET, start, stopAll, TestClient } from './helpers.js';

afterEach(stopAll);

describe('the JSON logs', () => {
  it('never contain a token, ticket, API key, password or secret through a whole flow at trace level', async () => {
    const gateway = await start(['--demo', '--jwt-secret', SECRET, '--api-key', API_KEY, '--log-level', 'trace']);
    const secrets: string[] = [SECRET, API_KEY, 'wonderland', 'builder'];

    const alice = await connectAs(gateway, 'alice');
    secrets.push(alice.token, alice.ticket);
    await gateway.request('/api/users/alice/messages', { apiKey: API_KEY, json: { data: { text: 'hi' } } });
    await alice.client.next((frame) => frame.type === 'message');

    // In-band reauth with a refreshed token.
    const refreshed = await gateway.request('/auth/refresh', { method: 'POST', headers: { authorization: `Bearer ${alice.token}` } });
    const fresh = ((await refreshed.json()) as { token: string }).token;
    secrets.push(fresh);
    alice.client.send({ type: 'auth', token: fresh });
    await alice.client.next((frame) => frame.type === 'auth_ok' && alice.client.frames.filter((f) => f.type === 'auth_ok').length === 2);

    // Refusals: a wrong password, a wrong API key, a bogus ticket in the query string, a bad auth frame.
    await gateway.request('/auth/login', { json: { username: 'bob', password: 'builder-typo' } });
    secrets.push('builder-typo');
    const wrongKey = 'wrong-api-key-0123456789';
    secrets.push(wrongKey);
    await gateway.request('/api/broadcast', { apiKey: wrongKey, json: { data: 1 } });
    const bogusTicket = 'B'.repeat(43);
    secrets.push(bogusTicket);
    const refused = new TestClient(`${gateway.wsUrl}?ticket=${bogusTicket}`, [SUBPROTOCOL]);
    await refused.closed;
    const bogusToken = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJl';
    secrets.push(bogusToken);
    const unauthenticated = new TestClient(gateway.wsUrl, [SUBPROTOCOL]);
    await new Promise((resolve) => unauthenticated.socket.once('open', resolve));
    unauthenticated.send({ type: 'auth', token: bogusToken });
    expect((await unauthenticated.closed).code).toBe(4401);

    await gateway.request('/api/users/alice/revoke', { apiKey: API_KEY, method: 'POST' });
    await alice.client.closed;
    await gateway.close();

    const records = gateway.logs.records;
    expect(records.length).toBeGreaterThan(10);
    const messages = records.map((record) => record.msg);
    expect(messages).toContain('gateway listening');
    expect(messages).toContain('http request');
    expect(messages).toContain('gateway stopped');
    expect(records).toContainEqual(
      expect.objectContaining({ msg: 'http request', method: 'POST', path: '/api/users/alice/messages', status: 200 }),
    );
    for (const secret of secrets) expect(gateway.logs.text).not.toContain(secret);
  });

  it('say that a demo secret and API key were generated, without their values', async () => {
    const gateway = await start(['--demo', '--log-level', 'info']);
    const messages = gateway.logs.records.map((record) => record.msg);
    expect(messages).toContain(
      'demo: generated a random JWT secret for this run; set AUTHSOCKET_JWT_SECRET to keep tokens valid across restarts',
    );
    expect(messages).toContain('demo: generated an API key for this run (shown once on stderr)');
    expect(gateway.logs.text).not.toContain(gateway.generatedApiKey as string);
  });

  it('report an unreachable Redis without its URL or password, and answer /healthz with 503', async () => {
    // A loopback port nothing listens on: the connection is refused at once.
    const gateway = await start(['--demo', '--log-level', 'warn', '--redis-url', 'redis://:hunter2@127.0.0.1:1']);
    for (let i = 0; i < 100 && !gateway.logs.records.some((record) => record.msg === 'redis broker status'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(gateway.logs.records.find((record) => record.msg === 'redis broker status')).toMatchObject({
      level: 40,
      status: 'reconnecting',
    });
    const health = await gateway.request('/healthz');
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ status: 'degraded', broker: 'reconnecting' });
    expect(gateway.logs.text).not.toContain('hunter2');
  });
});
