import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CloseCode } from '@authsocket/protocol';
import type { Connection } from '@authsocket/server';
import { type Browser, chromium, type Page } from 'playwright-core';
import { build, defaultClientConditions, type Rollup } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as Client from '../src/index.js';
import { startServer, type TestServer, until } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const PACKAGE_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const BROWSER_TIMEOUT_MS = 60_000;

/** What the test page puts on `window` for `page.evaluate` to use. */
interface PageGlobals {
  authsocket: typeof Client;
  client: Client.AuthSocket;
  log: { states: string[]; messages: Client.InboundMessage[] };
}

/** The client bundled for browsers exactly as an application's bundler would: ESM, `browser` condition. */
async function bundleClient(): Promise<string> {
  const result = await build({
    configFile: false,
    logLevel: 'silent',
    root: PACKAGE_DIR,
    resolve: { conditions: ['source', ...defaultClientConditions] },
    build: {
      write: false,
      minify: false,
      target: 'es2022',
      lib: { entry: path.join(PACKAGE_DIR, 'src/index.ts'), formats: ['es'], fileName: 'client' },
    },
  });
  const outputs = (Array.isArray(result) ? result : [result]) as Rollup.RolldownOutput[];
  const chunks = outputs.flatMap((o) => o.output).filter((c): c is Rollup.OutputChunk => c.type === 'chunk');
  expect(chunks).toHaveLength(1);
  return (chunks[0] as Rollup.OutputChunk).code;
}

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>authsocket client</title>
<script type="module">
  import * as authsocket from '/client.js';
  window.authsocket = authsocket;
</script>`;

describe('in Chromium', () => {
  let bundle: string;
  let browser: Browser;
  let launchError: unknown;

  beforeAll(async () => {
    bundle = await bundleClient();
    if (!existsSync(CHROMIUM)) return;
    try {
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
    } catch (error) {
      launchError = error;
    }
  }, BROWSER_TIMEOUT_MS);

  afterAll(async () => {
    await browser?.close();
  });

  /** A page served by `server`, with the bundle loaded. Missing Chromium is a failure, never a skip. */
  async function openPage(server: TestServer): Promise<Page> {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: run scripts/system-deps.sh (apt-get install -y chromium)`);
    }
    if (!browser) throw new Error(`Chromium did not start: ${String(launchError)}`);
    const page = await browser.newPage();
    page.on('pageerror', (error) => console.error('page error:', error));
    await page.goto(`${server.origin}/`);
    await page.waitForFunction(() => 'authsocket' in window);
    return page;
  }

  function serveClient(options: Parameters<typeof startServer>[0]): Promise<TestServer> {
    return startServer(options, {
      files: {
        '/': { type: 'text/html; charset=utf-8', body: PAGE },
        '/client.js': { type: 'text/javascript; charset=utf-8', body: bundle },
      },
    });
  }

  it('bundles without any Node built-in', () => {
    expect(bundle).not.toMatch(/from ['"]node:|require\(|__vite-browser-external/);
    expect(bundle).not.toMatch(/\bBuffer\.|\bprocess\./);
    expect(bundle).toMatch(/export \{[^}]*\bAuthSocket\b/);
    // The protocol package is inlined: one file, nothing else to resolve.
    expect(bundle).not.toMatch(/from ['"]@authsocket/);
    expect(bundle).toContain("'authsocket.v1'".replaceAll("'", '"'));
  });

  it(
    'connects with a ticket from the page, authenticates, receives a push, sends with an ack and closes cleanly',
    async () => {
      const server = await serveClient({ ticket: 'required' });
      const page = await openPage(server);
      try {
        const token = await server.token('alice');
        const authenticated = await page.evaluate(
          async ({ url, token }) => {
            const globals = window as unknown as PageGlobals;
            const { AuthSocket, fetchTicket } = globals.authsocket;
            const client = new AuthSocket({
              url,
              getTicket: async () => (await fetchTicket(location.origin, token)).ticket,
              initPayload: { hello: 'from the browser' },
            });
            globals.client = client;
            globals.log = { states: [], messages: [] };
            client.on('state', (change) => globals.log.states.push(change.newState));
            client.on('message', (message) => globals.log.messages.push(message));
            const done = new Promise<Client.AuthenticatedEvent>((resolve) => client.on('authenticated', resolve));
            client.connect();
            return done;
          },
          { url: server.wsUrl, token },
        );
        expect(authenticated).toMatchObject({ user: 'alice', reauth: false });
        expect(server.upgrades[0]?.protocols[1]).toMatch(/^ticket\./);

        expect(await server.gateway.sendToUser('alice', { pushed: 1 })).toBe(1);
        await page.waitForFunction(() => (window as unknown as PageGlobals).log.messages.length === 1);
        const log = await page.evaluate(() => (window as unknown as PageGlobals).log);
        expect(log.messages).toEqual([{ data: { pushed: 1 }, stream: 'user:alice', offset: 1, epoch: expect.any(String) }]);
        expect(log.states).toEqual(['connecting', 'authenticating', 'open']);

        await page.evaluate(() => (window as unknown as PageGlobals).client.send('acknowledged', { ack: true }));
        expect(server.received).toEqual([{ hello: 'from the browser' }, 'acknowledged']);

        await page.evaluate(() => (window as unknown as PageGlobals).client.close());
        await until(() => server.closes.length === 1, 'the server to see the close');
        expect(server.closes).toEqual([CloseCode.Normal]);
      } finally {
        await page.close();
      }
    },
    BROWSER_TIMEOUT_MS,
  );

  it(
    "reconnects at once when the browser comes back online or the page becomes visible, instead of sitting out its backoff",
    async () => {
      const server = await serveClient({ ticket: 'off' });
      let connection: Connection | undefined;
      server.gateway.on('authenticated', (e) => {
        connection = e.connection;
      });
      const page = await openPage(server);
      try {
        const token = await server.token('alice');
        await page.evaluate(
          async ({ url, token }) => {
            const globals = window as unknown as PageGlobals;
            const client = new globals.authsocket.AuthSocket({
              url,
              token,
              minReconnectDelayMs: 60_000,
              maxReconnectDelayMs: 60_000,
            });
            globals.client = client;
            globals.log = { states: [], messages: [] };
            client.on('state', (change) => globals.log.states.push(change.newState));
            const done = new Promise((resolve) => client.on('authenticated', resolve));
            client.connect();
            await done;
          },
          { url: server.wsUrl, token },
        );
        connection?.close(CloseCode.InternalError, 'drop');
        await page.waitForFunction(() => (window as unknown as PageGlobals).client.state === 'reconnecting');
        await page.evaluate(() => window.dispatchEvent(new Event('online')));
        await page.waitForFunction(() => (window as unknown as PageGlobals).client.state === 'open', undefined, { timeout: 5_000 });
        connection?.close(CloseCode.InternalError, 'drop again');
        await page.waitForFunction(() => (window as unknown as PageGlobals).client.state === 'reconnecting');
        expect(await page.evaluate(() => document.visibilityState)).toBe('visible');
        await page.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));
        await page.waitForFunction(() => (window as unknown as PageGlobals).client.state === 'open', undefined, { timeout: 5_000 });
        const states = await page.evaluate(() => (window as unknown as PageGlobals).log.states);
        const cycle = ['reconnecting', 'connecting', 'authenticating', 'open'];
        expect(states).toEqual(['connecting', 'authenticating', 'open', ...cycle, ...cycle]);
        expect(server.upgrades).toHaveLength(3);
        await page.evaluate(() => (window as unknown as PageGlobals).client.close());
      } finally {
        await page.close();
      }
    },
    BROWSER_TIMEOUT_MS,
  );
});
