import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { ExampleBackend } from '../example-backend.js';
import { API_KEY, buildLikeNpmStart, DemoTab, freePort, GatewayProcess, launchChromium, sleep } from './harness.js';

const PROXY_SECRET = 'e2e-demo-proxy-secret-of-at-least-32-bytes';

/**
 * The demo web app in Debian's Chromium against the gateway started as the README starts it:
 * `npm run build`, then `node packages/gateway/dist/cli.js serve --demo` (with a fixed JWT secret and
 * API key). Screenshots of the main states land in `.artifacts/screenshots/`.
 */

const TEST_TIMEOUT_MS = 60_000;

let browser: Browser;
let gateway: GatewayProcess;
const contexts: BrowserContext[] = [];
const tabs: DemoTab[] = [];

beforeAll(async () => {
  buildLikeNpmStart();
  browser = await launchChromium();
}, 180_000);

afterAll(async () => {
  await browser?.close();
});

beforeEach(async () => {
  gateway = await GatewayProcess.start(await freePort());
});

afterEach(async () => {
  // A page that threw is a failure, whatever the test checked.
  const errors = tabs.flatMap((tab) => tab.errors.map(String));
  tabs.length = 0;
  await Promise.all(contexts.splice(0).map((context) => context.close()));
  await gateway?.stop();
  expect(errors).toEqual([]);
});

/** A new browser context (its own cookies and storage: another person) with the demo open. */
async function visit({ width = 1280, height = 860, query = '' } = {}): Promise<DemoTab> {
  const mobile = width < 500;
  const context = await browser.newContext({ viewport: { width, height }, ...(mobile ? { deviceScaleFactor: 2, isMobile: true, hasTouch: true } : {}) });
  contexts.push(context);
  const tab = await DemoTab.open(context, `${gateway.origin}/${query}`);
  tabs.push(tab);
  return tab;
}

async function signedIn(user: string, options?: Parameters<typeof visit>[0]): Promise<DemoTab> {
  const tab = await visit(options);
  await tab.signIn(user);
  return tab;
}

/** A raw `authsocket.v1` socket, with what it received and how it closed. */
function rawSocket(url: string): { frames: unknown[]; socket: WebSocket; closed: Promise<{ code: number; reason: string }> } {
  const socket = new WebSocket(url, ['authsocket.v1']);
  const frames: unknown[] = [];
  socket.on('error', () => {});
  socket.on('message', (data) => frames.push(JSON.parse(String(data))));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => socket.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
  return { frames, socket, closed };
}

describe('the demo app', () => {
  it(
    'lets two users in two browser contexts chat: each sees the other’s message, named after their token',
    async () => {
      const alice = await visit();
      await alice.screenshot('01-sign-in');
      await alice.page.getByLabel('Username').fill('alice');
      await alice.page.getByLabel('Password').fill('builder');
      await alice.page.getByRole('button', { name: 'Sign in' }).click();
      await alice.page.getByRole('alert').filter({ hasText: 'Wrong username or password.' }).waitFor();
      expect(await alice.state()).toBe('idle');
      await alice.signIn('alice');
      const bob = await signedIn('bob');

      await alice.say('Hi Bob! Can you read me?');
      await bob.waitForChat('Hi Bob! Can you read me?');
      await bob.say('Loud and clear, Alice.');
      await alice.waitForChat('Loud and clear, Alice.');

      const expected: [string, string][] = [
        ['alice', 'Hi Bob! Can you read me?'],
        ['bob', 'Loud and clear, Alice.'],
      ];
      expect(await alice.chat()).toEqual(expected);
      expect(await bob.chat()).toEqual(expected);
      expect(await alice.text('signed-in-user')).toBe('alice');
      expect(await alice.text('upgrades')).toBe('1');

      // The stand-in backend pushes to alice alone.
      await alice.page.getByRole('button', { name: 'Send me a notification' }).click();
      await alice.waitForNotification('Hello alice');
      await alice.say('Bob, try the “Expire my token now” button.');
      await bob.waitForChat('Expire my token now');
      expect(await bob.notifications()).toEqual([]);
      await alice.screenshot('02-chat-alice');
      await bob.screenshot('03-chat-bob');
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'delivers nothing to a page or socket that is not authenticated',
    async () => {
      // A socket that never authenticates: 4408 after the gateway's 10 s auth timeout, nothing before.
      const silent = rawSocket(gateway.wsUrl);
      // A socket that asks for the chat before authenticating: 4401 at once.
      const eager = rawSocket(gateway.wsUrl);
      await new Promise((resolve) => eager.socket.once('open', resolve));
      eager.socket.send(JSON.stringify({ type: 'subscribe', topic: 'chat:lobby', id: 's1' }));
      expect(await eager.closed).toEqual({ code: 4401, reason: 'authenticate first' });
      expect(eager.frames).toEqual([]);

      const stranger = await visit();
      const alice = await signedIn('alice');
      const bob = await signedIn('bob');
      await alice.say('A secret for signed-in eyes only');
      await bob.waitForChat('A secret for signed-in eyes only');
      expect(await gateway.notify('alice', 'Private to alice')).toBe(1);
      await alice.waitForNotification('Private to alice');
      const broadcast = await gateway.request('/api/broadcast', { apiKey: true, json: { data: { type: 'notifications/added', payload: { text: 'To everyone' } } } });
      expect(await broadcast.json()).toEqual({ deliveredLocally: 2, node: expect.any(String) });
      await bob.waitForNotification('To everyone');

      // The signed-out page opened no socket and shows nothing of it.
      expect(await stranger.state()).toBe('idle');
      expect(await stranger.page.getByTestId('chat-message').count()).toBe(0);
      const body = await stranger.page.locator('body').innerText();
      expect(body).not.toContain('A secret');
      expect(body).not.toContain('To everyone');
      expect(await stranger.page.getByRole('heading', { name: 'Sign in to the demo' }).isVisible()).toBe(true);

      expect(await silent.closed).toEqual({ code: 4408, reason: 'authentication timed out' });
      expect(silent.frames).toEqual([]);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'stops delivery at once on log out: pushes and chat after it never arrive, and the gateway counts no connection',
    async () => {
      const alice = await signedIn('alice');
      const bob = await signedIn('bob');
      expect(await gateway.connections('alice')).toBe(1);
      expect(await gateway.notify('alice', 'Before logging out')).toBe(1);
      await alice.waitForNotification('Before logging out');

      await alice.page.getByRole('button', { name: 'Log out' }).click();
      await alice.page.getByRole('heading', { name: 'Sign in to the demo' }).waitFor();
      await alice.waitForState('unauthenticated');
      await expect.poll(() => gateway.connections('alice')).toBe(0);

      expect(await gateway.notify('alice', 'After logging out')).toBe(0);
      await bob.say('Anyone still here?');
      await bob.waitForChat('Anyone still here?');
      // Had anything reached alice's socket, it would have arrived by now (bob's own copy has).
      await sleep(300);
      expect(await alice.page.getByTestId('chat-message').count()).toBe(0);
      expect(await alice.page.getByTestId('notification').count()).toBe(0);
      const body = await alice.page.locator('body').innerText();
      expect(body).not.toContain('After logging out');
      expect(body).not.toContain('Anyone still here?');
      expect(body).not.toContain('Before logging out');

      // Signing in again binds the same socket again: no new upgrade, messages flow from now on.
      await alice.signIn('alice');
      expect(await alice.text('upgrades')).toBe('1');
      expect(await gateway.notify('alice', 'Welcome back')).toBe(1);
      await alice.waitForNotification('Welcome back');
      expect(await alice.notifications()).toEqual(['Welcome back']);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'shows the hold on “Expire my token now” and loses nothing: what was sent meanwhile arrives after the reauth, in order',
    async () => {
      const alice = await signedIn('alice');
      const bob = await signedIn('bob');
      await bob.say('Alice, expire your token: I will keep talking.');
      await alice.waitForChat('I will keep talking');

      await alice.page.getByTestId('expire-token').click();
      await alice.waitForState('reauthenticating', { held: true });
      expect(await alice.page.getByTestId('held-banner').isVisible()).toBe(true);
      expect(await alice.page.getByTestId('chat-banner').textContent()).toContain('the gateway is holding messages for you');

      // Sent while alice's token is expired: held by the gateway, not delivered, not dropped.
      for (const text of ['Held 1', 'Held 2', 'Held 3']) expect(await gateway.notify('alice', text)).toBe(1);
      await bob.say('Said during the hold');
      await bob.waitForChat('Said during the hold');
      expect(await alice.page.getByTestId('notification').count()).toBe(0);
      expect(await alice.page.getByTestId('chat-message').count()).toBe(1);
      // Still held after those checks: they saw the hold, not a late delivery.
      expect(await alice.page.getByTestId('held-banner').isVisible()).toBe(true);
      await alice.screenshot('04-token-expired-held');

      await alice.waitForState('open', { held: false });
      await alice.waitForNotification('Held 3');
      await alice.waitForChat('Said during the hold');
      expect(await alice.notifications()).toEqual(['Held 3', 'Held 2', 'Held 1']);
      expect(await alice.chat()).toEqual([
        ['bob', 'Alice, expire your token: I will keep talking.'],
        ['bob', 'Said during the hold'],
      ]);
      // In band all along: one upgrade; two in-band auths (the short token, then the late fresh one).
      expect(await alice.text('upgrades')).toBe('1');
      expect(await alice.text('refreshes')).toBe('2');
      expect(await alice.page.getByTestId('event-log').textContent()).toContain('held messages flushed in order');
      await alice.screenshot('05-after-reauth');
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'reconnects and resumes after a gateway restart, saying that the in-memory history was lost',
    async () => {
      const alice = await signedIn('alice');
      const bob = await signedIn('bob');
      await bob.say('Before the restart');
      await alice.waitForChat('Before the restart');

      await gateway.stop();
      await alice.waitForState('reconnecting');
      expect(await alice.page.getByTestId('chat-banner').textContent()).toContain('1001 going away');
      await alice.screenshot('06-reconnecting');

      gateway = await GatewayProcess.start(gateway.port);
      await alice.waitForState('open', { timeout: 30_000 });
      await bob.waitForState('open', { timeout: 30_000 });
      await alice.page.getByTestId('chat-notice').filter({ hasText: 'History lost during a gateway restart' }).waitFor();
      expect(await alice.page.getByTestId('event-log').textContent()).toMatch(/history of .*user:alice.* is gone/);
      expect(Number(await alice.text('upgrades'))).toBeGreaterThanOrEqual(2);

      await bob.say('After the restart');
      await alice.waitForChat('After the restart');
      expect(await gateway.notify('alice', 'Pushed after the restart')).toBe(1);
      await alice.waitForNotification('Pushed after the restart');
      expect(await alice.chat()).toEqual([
        ['bob', 'Before the restart'],
        ['bob', 'After the restart'],
      ]);
      await alice.screenshot('07-after-restart');
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'refreshes the token in band without a blink: same socket, never shown as anything but live',
    async () => {
      // The one departure from `npm start`: the gateway asks for a fresh token 115 s before a
      // 2-minute token expires, i.e. 5 s after each login or refresh, instead of after 90 s.
      await gateway.stop();
      gateway = await GatewayProcess.start(gateway.port, ['--reauth-window', '115s']);
      const alice = await signedIn('alice');
      await alice.page.evaluate(() => {
        const seen: string[] = [];
        (window as unknown as { seen: string[] }).seen = seen;
        const pill = document.querySelector('[data-testid="connection-state"]') as HTMLElement;
        const record = () => seen.push(`${pill.dataset.state}/${pill.className}/${document.querySelector('.composer-hint')?.textContent?.startsWith('Not live') ? 'queued' : 'live'}`);
        new MutationObserver(record).observe(pill, { attributes: true, childList: true, subtree: true });
      });
      await alice.page.waitForFunction(() => document.querySelector('[data-testid="refreshes"]')?.textContent === '2', undefined, { timeout: 20_000 });
      expect(await alice.text('upgrades')).toBe('1');
      const seen = await alice.page.evaluate(() => (window as unknown as { seen: string[] }).seen);
      expect(seen.length).toBeGreaterThan(0);
      for (const entry of seen) expect(entry).toMatch(/^(open|reauthenticating)\/pill pill-ok\/live$/);
      expect(seen.some((entry) => entry.startsWith('reauthenticating'))).toBe(true);
      const log = await alice.text('event-log');
      expect(log).toContain('reauth_required (expiring): fetching a fresh token');
      expect(log).toContain('auth_ok in band: token refreshed, no reconnect · same socket #1');
      expect(await gateway.notify('alice', 'Still here after two refreshes')).toBe(1);
      await alice.waitForNotification('Still here after two refreshes');
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'answers "Ask the backend" through the HTTP proxy and the example backend (a process of its own), and shows the job it reports back',
    async () => {
      // As `npm start` runs it (scripts/demo.mjs): the backend behind --proxy-connect-url and --proxy-rpc-url.
      await gateway.stop();
      const port = await freePort();
      const backend = await ExampleBackend.start(await freePort(), { secret: PROXY_SECRET, apiKey: API_KEY, gatewayUrl: `http://127.0.0.1:${port}` });
      try {
        gateway = await GatewayProcess.start(port, backend.flags(['connect', 'rpc']), { AUTHSOCKET_PROXY_SECRET: PROXY_SECRET });
        const alice = await signedIn('alice');
        await alice.page.getByRole('button', { name: 'Ask the backend the time' }).click();
        await alice.page.getByTestId('backend-answer').filter({ hasText: 'for alice' }).waitFor({ timeout: 10_000 });
        expect(await alice.text('backend-answer')).toMatch(/^The backend says it is \d\d:\d\d:\d\d for alice$/);
        await alice.page.getByRole('button', { name: 'Start a job' }).click();
        await alice.waitForNotification('Your job is done');
        const log = await alice.text('event-log');
        expect(log).toContain('rpc time → the gateway POSTs it to the backend');
        expect(log).toMatch(/result ← \{"now":\d+,"for":"alice"\}/);
        await alice.screenshot('11-backend-rpc');

        await backend.kill();
        await alice.page.getByRole('button', { name: 'Ask the backend the time' }).click();
        await alice.page.getByTestId('backend-answer').filter({ hasText: 'temporary' }).waitFor({ timeout: 10_000 });
        expect(await alice.text('backend-answer')).toBe('No answer: backend unavailable (temporary: try again)');
        // The socket stayed up: the backend being down logs no one out.
        expect(await gateway.notify('alice', 'Still connected')).toBe(1);
        await alice.waitForNotification('Still connected');
      } finally {
        await backend.kill();
      }
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'fits a 375 px phone screen',
    async () => {
      const carol = await visit({ width: 375, height: 812, query: '?user=carol' });
      await carol.screenshot('08-phone-sign-in');
      await carol.signIn('carol');
      const alice = await signedIn('alice');
      await alice.say('Welcome, Carol — this is the lobby.');
      await carol.waitForChat('Welcome, Carol');
      await carol.say('Thanks! Reading you on my phone.');
      await alice.waitForChat('Reading you on my phone');
      expect(await carol.page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
      await carol.screenshot('09-phone-chat');
      await carol.screenshot('10-phone-full', { fullPage: true });
    },
    TEST_TIMEOUT_MS,
  );
});
