import { afterEach, describe, expect, it } from 'vitest';
import { API_KEY, connectAs, start, stopAll, subscribe } from './helpers.js';

afterEach(stopAll);

/** `application/json` goes through the node:http fast path; the same type without the space goes through Express. */
const FAST = 'application/json';
const EXPRESS = 'application/json;charset=utf-8';

const tooLong = 'x'.repeat(300);
const cases: [string, string, string, Record<string, string>?][] = [
  ['a publish to a topic', '/api/topics/chat/messages', '{"data":{"n":1}}'],
  ['a message to a user with an encoded name', '/api/users/al%20ice/messages', '{"data":"hi"}'],
  ['a broadcast with an Idempotency-Key', '/api/broadcast', '{"data":[1,2]}', { 'idempotency-key': 'retry-1' }],
  ['a bad Idempotency-Key', '/api/broadcast', '{"data":1}', { 'idempotency-key': 'has space' }],
  ['invalid JSON', '/api/topics/chat/messages', '{"data":'],
  ['JSON that is not an object', '/api/topics/chat/messages', '"just a string"'],
  ['a body without data', '/api/topics/chat/messages', '{"nodata":1}'],
  ['a topic name too long', `/api/topics/${tooLong}/messages`, '{"data":1}'],
  ['a user name too long', `/api/users/${tooLong}/messages`, '{"data":1}'],
  ['a connection id that is no id', '/api/connections/nope/messages', '{"data":1}'],
  ['a body over 64 KiB', '/api/topics/chat/messages', JSON.stringify({ data: 'x'.repeat(70_000) })],
  ['a batch', '/api/messages', JSON.stringify({ messages: [{ to: { topic: 'chat' }, data: 1 }, { to: { everyone: true }, data: 2 }] })],
  ['a batch with a bad second message', '/api/messages', JSON.stringify({ messages: [{ to: { topic: 'chat' }, data: 1 }, { to: {}, data: 2 }] })],
  ['a batch over 1,000 messages', '/api/messages', JSON.stringify({ messages: Array.from({ length: 1_001 }, () => ({ to: { topic: 'chat' }, data: 1 })) })],
  ['an unknown route', '/api/topics/chat/nothing', '{"data":1}'],
];

describe('the API fast path', () => {
  it('answers every request as the Express router does: same status, same body', async () => {
    const gateway = await start(['--demo', '--api-key', API_KEY, '--node-id', 'gw-fast']);
    const answer = async (path: string, body: string, type: string, extra: Record<string, string> = {}) => {
      const response = await gateway.request(path, {
        method: 'POST',
        apiKey: API_KEY,
        body,
        headers: { 'content-type': type, ...extra },
      });
      return { status: response.status, body: (await response.json()) as unknown };
    };
    const statuses = new Set<number>();
    for (const [what, path, body, extra] of cases) {
      const fast = await answer(path, body, FAST, extra);
      const express = await answer(path, body, EXPRESS, extra);
      expect({ what, ...fast }).toEqual({ what, ...express });
      statuses.add(fast.status);
    }
    // The table covers answers, refusals and a route that does not exist.
    expect([...statuses].sort()).toEqual([200, 400, 404, 413]);
  });

  it('delivers a publish it takes, and counts it under the route in the metrics', async () => {
    const gateway = await start(['--demo', '--api-key', API_KEY, '--subscribe-topics', '*']);
    const { client } = await connectAs(gateway, 'alice');
    await subscribe(client, 'news');
    const response = await gateway.request('/api/topics/news/messages', { apiKey: API_KEY, json: { data: { headline: 'fast' } } });
    expect(response.status).toBe(200);
    expect(await client.next((frame) => frame.type === 'message')).toMatchObject({ type: 'message', topic: 'news', data: { headline: 'fast' } });
    const metrics = await (await gateway.request('/metrics')).text();
    expect(metrics).toMatch(/authsocket_api_requests_total\{[^}]*route="\/topics\/:topic\/messages"[^}]*status="200"[^}]*\} 1/);
  });

  it('logs a message sent at debug, not at info', async () => {
    const info = await start(['--demo', '--api-key', API_KEY, '--log-level', 'info']);
    const debug = await start(['--demo', '--api-key', API_KEY, '--log-level', 'debug']);
    for (const gateway of [info, debug]) {
      const response = await gateway.request('/api/topics/chat/messages', { apiKey: API_KEY, json: { data: 1 } });
      expect(response.status).toBe(200);
    }
    const sent = (gateway: typeof info) => gateway.logs.records.filter((record) => record.msg === 'api: message to topic');
    expect(sent(info)).toEqual([]);
    expect(sent(debug)).toMatchObject([{ api: 'publish', topic: 'chat', deliveredLocally: 0 }]);
  });
});
