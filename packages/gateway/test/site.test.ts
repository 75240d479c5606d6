import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { createSite, type SiteOptions } from '../src/site.js';
import { start, stopAll } from './helpers.js';

afterEach(stopAll);

const servers = new Set<Server>();
afterEach(async () => {
  await Promise.all([...servers].map((server) => new Promise((resolve) => server.close(resolve))));
  servers.clear();
});

/** `createSite(options)` alone behind an HTTP server on 127.0.0.1; resolves to its origin. */
async function serveSite(options: SiteOptions): Promise<string> {
  const app = express().use(createSite(options));
  const server = createServer(app);
  servers.add(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function directory(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'authsocket-site-'));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return dir;
}

describe('--static-dir', () => {
  it('serves its files at / in place of the endpoint list, after the gateway routes', async () => {
    const dir = directory({ 'index.html': '<!doctype html><title>demo app</title>', 'app.js': 'console.log(1)' });
    const gateway = await start(['--demo', '--static-dir', dir]);

    const index = await gateway.request('/');
    expect(await index.text()).toBe('<!doctype html><title>demo app</title>');
    const script = await gateway.request('/app.js');
    expect(script.headers.get('content-type')).toMatch(/javascript/);
    expect((await gateway.request('/healthz')).status).toBe(200);
    expect((await gateway.request('/missing.js')).status).toBe(404);
  });
});

describe('the demo app at /', () => {
  const base = { staticDir: undefined, wsPath: '/ws', apiEnabled: true } as const;

  it('is served in demo mode once built', async () => {
    const demoAppDir = directory({ 'index.html': '<!doctype html><title>the demo</title>' });
    const origin = await serveSite({ ...base, demo: true, demoAppDir });
    expect(await (await fetch(`${origin}/`)).text()).toBe('<!doctype html><title>the demo</title>');
  });

  it('is replaced by a page listing the endpoints until it is built', async () => {
    const origin = await serveSite({ ...base, demo: true, demoAppDir: directory({}) });
    const response = await fetch(`${origin}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await response.text();
    expect(html).toContain('POST /auth/login');
    expect(html).toContain('GET /ws (WebSocket)');
    expect(html).toContain('POST /api/users/:user/messages');
  });

  it('is not served outside demo mode, even when built', async () => {
    const demoAppDir = directory({ 'index.html': '<!doctype html><title>the demo</title>' });
    const origin = await serveSite({ ...base, demo: false, demoAppDir });
    const html = await (await fetch(`${origin}/`)).text();
    expect(html).toContain('GET /ws (WebSocket)');
    expect(html).not.toContain('POST /auth/login');
  });
});
