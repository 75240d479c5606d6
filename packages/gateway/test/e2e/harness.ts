import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { expect } from 'vitest';

export const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
export const SCREENSHOTS = join(ROOT, '.artifacts/screenshots');
const CLI = join(ROOT, 'packages/gateway/dist/cli.js');
const CHROMIUM = '/usr/bin/chromium';

/** Fixed for the run, so a restarted gateway accepts the tokens the pages already hold. */
export const JWT_SECRET = 'e2e-demo-jwt-secret-of-at-least-32-bytes';
export const API_KEY = 'e2e-demo-api-key-0123456789';

/**
 * What `npm start` builds is there: the suite's global setup ran `npm run build` (the packages with
 * `tsc -b`, the demo app with vite) once, before every test file, so no two files build at once.
 */
export function buildLikeNpmStart(): void {
  for (const built of ['packages/gateway/dist/cli.js', 'packages/gateway/web/dist/index.html']) {
    if (!existsSync(join(ROOT, built))) throw new Error(`${built} is missing: run the tests through vitest (its global setup runs npm run build)`);
  }
}

/** A TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The environment without this machine's AUTHSOCKET_* and PORT: the gateway sees only the test's. */
function gatewayEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('AUTHSOCKET_') && name !== 'PORT'));
  return { ...env, AUTHSOCKET_JWT_SECRET: JWT_SECRET, AUTHSOCKET_API_KEY: API_KEY, AUTHSOCKET_LOG_LEVEL: 'warn' };
}

/**
 * `node packages/gateway/dist/cli.js serve --demo` on 127.0.0.1:`port`, spawned directly (no npm in
 * between) in its own process group, which `stop()` signals as a whole.
 */
export class GatewayProcess {
  readonly port: number;
  readonly origin: string;
  readonly #child: ChildProcess;
  readonly #exited: Promise<void>;
  #output = '';

  private constructor(port: number, args: readonly string[], env: Readonly<Record<string, string>>) {
    this.port = port;
    this.origin = `http://127.0.0.1:${port}`;
    this.#child = spawn(process.execPath, [CLI, 'serve', '--demo', '--host', '127.0.0.1', '--port', String(port), ...args], {
      cwd: ROOT,
      env: { ...gatewayEnv(), ...env },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk: Buffer) => {
      this.#output = (this.#output + chunk.toString()).slice(-20_000);
    };
    this.#child.stdout?.on('data', keep);
    this.#child.stderr?.on('data', keep);
    this.#exited = new Promise((resolve) => this.#child.once('exit', () => resolve()));
  }

  /** Starts the gateway on `port`, with `args` after `serve --demo --host 127.0.0.1 --port <port>` and `env` added. */
  static async start(port: number, args: readonly string[] = [], env: Readonly<Record<string, string>> = {}): Promise<GatewayProcess> {
    const gateway = new GatewayProcess(port, args, env);
    await gateway.#ready();
    return gateway;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  /** What the process wrote (for failure messages). */
  get output(): string {
    return this.#output;
  }

  async #ready(): Promise<void> {
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (this.#child.exitCode !== null) throw new Error(`the gateway exited with ${this.#child.exitCode}:\n${this.#output}`);
      try {
        if ((await fetch(`${this.origin}/healthz`)).ok) return;
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
    await this.stop();
    throw new Error(`the gateway did not answer /healthz within 15 s:\n${this.#output}`);
  }

  /** `fetch` on the gateway; `apiKey: true` adds the API's bearer header. */
  request(path: string, { apiKey = false, json, ...init }: RequestInit & { apiKey?: boolean; json?: unknown } = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (apiKey) headers.set('authorization', `Bearer ${API_KEY}`);
    if (json !== undefined) headers.set('content-type', 'application/json');
    return fetch(`${this.origin}${path}`, {
      ...init,
      headers,
      ...(json === undefined ? {} : { method: init.method ?? 'POST', body: JSON.stringify(json) }),
    });
  }

  /** `POST /api/users/:user/messages` with a `notifications/added` action; resolves to `deliveredLocally`. */
  async notify(user: string, text: string): Promise<number> {
    const response = await this.request(`/api/users/${user}/messages`, {
      apiKey: true,
      json: { data: { type: 'notifications/added', payload: { text } } },
    });
    expect(response.status).toBe(200);
    return ((await response.json()) as { deliveredLocally: number }).deliveredLocally;
  }

  async connections(user: string): Promise<number> {
    const response = await this.request(`/api/users/${user}/connections`, { apiKey: true });
    return ((await response.json()) as { connectedLocally: number }).connectedLocally;
  }

  /** SIGTERM to the process group (the gateway closes its sockets 1001); SIGKILL after 5 s. */
  async stop(): Promise<void> {
    const pid = this.#child.pid;
    if (pid === undefined || this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const signal = (name: NodeJS.Signals) => {
      try {
        process.kill(-pid, name);
      } catch {
        // already gone
      }
    };
    signal('SIGTERM');
    const killed = await Promise.race([this.#exited.then(() => false), sleep(5_000).then(() => true)]);
    if (killed) {
      signal('SIGKILL');
      await this.#exited;
    }
  }
}

/** Chromium from Debian. Missing is a failure, never a skip: `scripts/system-deps.sh` installs it. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: run scripts/system-deps.sh (apt-get install -y chromium)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}


/** A browser tab on the demo app, with its uncaught page errors recorded. */
export class DemoTab {
  readonly page: Page;
  readonly errors: Error[] = [];

  constructor(page: Page) {
    this.page = page;
    page.on('pageerror', (error) => this.errors.push(error));
  }

  static async open(context: BrowserContext, url: string): Promise<DemoTab> {
    const tab = new DemoTab(await context.newPage());
    await tab.page.goto(url);
    await tab.page.getByRole('heading', { name: 'Sign in to the demo' }).waitFor();
    return tab;
  }

  /** Picks the demo user on the sign-in card, signs in, and waits until the room is joined. */
  async signIn(user: string): Promise<void> {
    await this.page.getByTestId(`demo-user-${user}`).click();
    await this.page.getByRole('button', { name: 'Sign in' }).click();
    await this.waitForState('open');
    await this.page.locator('section.chat[data-joined="true"]').waitFor();
  }

  /** The connection state the header shows (`data-state`, the client's state from the React hook). */
  state(): Promise<string | null> {
    return this.page.getByTestId('connection-state').getAttribute('data-state');
  }

  async waitForState(state: string, { held, timeout = 15_000 }: { held?: boolean; timeout?: number } = {}): Promise<void> {
    const heldSelector = held === undefined ? '' : `[data-held="${held}"]`;
    await this.page.locator(`[data-testid="connection-state"][data-state="${state}"]${heldSelector}`).waitFor({ timeout });
  }

  async say(text: string): Promise<void> {
    await this.page.getByTestId('chat-input').fill(text);
    await this.page.getByTestId('chat-input').press('Enter');
  }

  /** `[from, text]` of every chat message shown, oldest first. */
  async chat(): Promise<[string, string][]> {
    return this.page
      .getByTestId('chat-message')
      .evaluateAll((items) => items.map((item) => [item.getAttribute('data-from') ?? '', item.querySelector('.chat-text')?.textContent ?? '']));
  }

  async waitForChat(text: string, timeout = 10_000): Promise<void> {
    await this.page.getByTestId('chat-message').filter({ hasText: text }).first().waitFor({ timeout });
  }

  /** Notification texts, newest first as shown. */
  notifications(): Promise<string[]> {
    return this.page.locator('[data-testid="notification"] .notification-text').allTextContents();
  }

  async waitForNotification(text: string, timeout = 10_000): Promise<void> {
    await this.page.getByTestId('notification').filter({ hasText: text }).first().waitFor({ timeout });
  }

  async text(testId: string): Promise<string> {
    return (await this.page.getByTestId(testId).textContent()) ?? '';
  }

  /** Saves `.artifacts/screenshots/<name>.png` of the viewport, scrolled to the top, animations stopped. */
  async screenshot(name: string, { fullPage = false }: { fullPage?: boolean } = {}): Promise<void> {
    mkdirSync(SCREENSHOTS, { recursive: true });
    await this.page.evaluate(() => window.scrollTo(0, 0));
    await this.page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage, animations: 'disabled', caret: 'hide' });
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
