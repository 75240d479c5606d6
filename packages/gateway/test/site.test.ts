import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { start, stopAll } from './helpers.js';

afterEach(stopAll);

describe('--static-dir', () => {
  it('serves its files at / in place of the endpoint list, after the gateway routes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'authsocket-site-'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>demo app</title>');
    writeFileSync(join(dir, 'app.js'), 'console.log(1)');
    const gateway = await start(['--demo', '--static-dir', dir]);

    const index = await gateway.request('/');
    expect(await index.text()).toBe('<!doctype html><title>demo app</title>');
    const script = await gateway.request('/app.js');
    expect(script.headers.get('content-type')).toMatch(/javascript/);
    expect((await gateway.request('/healthz')).status).toBe(200);
    expect((await gateway.request('/missing.js')).status).toBe(404);
  });
});
