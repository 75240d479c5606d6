import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Canary } from './helpers/canary.js';
import { API_KEY, type GatewayHandle, startTestGateway } from './helpers/gateway.js';
import { rawExchange } from './helpers/raw.js';

/** The backend's door (`/api`, bearer API key) and the unauthenticated endpoints next to it. */

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

const post = (path: string, headers: Record<string, string>, body = '{"data":"spoofed"}') =>
  fetch(`${gateway.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

describe('the backend API without the right key', () => {
  it.each([
    ['no Authorization header', {}],
    ['another key', { authorization: 'Bearer another-key-0123456789' }],
    ['the key with one character changed', { authorization: `Bearer ${API_KEY.slice(0, -1)}X` }],
    ['the key as a prefix', { authorization: `Bearer ${API_KEY.slice(0, 8)}` }],
    ['the key with a suffix', { authorization: `Bearer ${API_KEY}x` }],
    ['the key under another scheme', { authorization: `Basic ${API_KEY}` }],
    ['the key without a scheme', { authorization: API_KEY }],
    ['a JWT of a user instead of the key', { authorization: 'Bearer <jwt>' }],
    ['the key in another header', { 'x-api-key': API_KEY }],
  ])('refuses %s with 401 and pushes nothing', async (_name, headers) => {
    const jwt = await gateway.token('canary');
    const resolved = Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, value.replace('<jwt>', jwt)]));
    for (const path of ['/api/users/canary/messages', '/api/topics/canary-room/messages', '/api/broadcast', '/api/users/canary/revoke']) {
      const response = await post(path, resolved);
      expect([path, response.status, await response.json()]).toEqual([path, 401, { error: 'unauthorized' }]);
    }
    await canary.assertAlive();
    expect(canary.client.messages()).not.toContain('spoofed');
  });

  it('answers 401 before reading a 10 MB body', async () => {
    const body = 'x'.repeat(10 * 1024 * 1024);
    const request = `POST /api/broadcast HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
    const answer = await rawExchange(gateway.port, request);
    expect(answer.status).toBe(401);
    expect(answer.ms).toBeLessThan(2_000);
    await canary.assertAlive();
  });
});

describe('the backend API with the key', () => {
  it('refuses a body over 64 KiB with 413 and malformed JSON with 400', async () => {
    const auth = { authorization: `Bearer ${API_KEY}` };
    expect((await post('/api/broadcast', auth, JSON.stringify({ data: 'x'.repeat(70 * 1024) }))).status).toBe(413);
    expect((await post('/api/broadcast', auth, '{"data":')).status).toBe(400);
  });

  it('carries prototype-polluting keys as plain data without polluting the gateway', async () => {
    await gateway.api('/users/canary/messages', JSON.parse('{"data":{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}}'));
    await canary.client.next((frame) => frame.type === 'message' && typeof frame.data === 'object' && frame.data !== null && '__proto__' in frame.data);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await gateway.api('/users/__proto__/messages', { data: 'odd user name' });
    await gateway.api('/users/constructor/revoke');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await canary.assertAlive();
  });
});

describe('the unauthenticated endpoints', () => {
  it('/healthz and /metrics reveal counts, never user names, tokens or tickets', async () => {
    const ticket = await gateway.ticket('alice');
    await gateway.api('/users/canary/messages', { data: 'x' });
    const exposed = `${await (await fetch(`${gateway.url}/healthz`)).text()}\n${await (await fetch(`${gateway.url}/metrics`)).text()}`;
    for (const secret of ['canary', 'alice', ticket, API_KEY]) expect(exposed).not.toContain(secret);
  });

  it('--static-dir serves its own files and nothing outside the directory', async () => {
    const root = await mkdtemp(join(tmpdir(), 'authsocket-static-'));
    await mkdir(join(root, 'public'));
    await writeFile(join(root, 'public', 'index.html'), '<p>hello</p>');
    await writeFile(join(root, 'secret.txt'), 'outside the static directory');
    const site = await startTestGateway(['--static-dir', join(root, 'public')]);
    try {
      expect(await (await fetch(`${site.url}/index.html`)).text()).toBe('<p>hello</p>');
      for (const path of ['/../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt', '/%2e%2e%2fsecret.txt', '/.%2e/secret.txt', '/..%5csecret.txt']) {
        const answer = await rawExchange(site.port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
        expect([path, answer.body.includes('outside the static directory')]).toEqual([path, false]);
        expect([path, answer.status >= 400]).toEqual([path, true]);
      }
    } finally {
      await site.close();
    }
  });
});
