import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, GatewayProcess, launchChromium } from './harness.js';

/**
 * A browser app served from another origin than the gateway's gets a ticket with `fetch` and opens
 * the WebSocket with it (`--allowed-origins` names that origin); a page from any other origin cannot
 * read a ticket. Real Chromium, a real gateway process, two real origins on loopback.
 */

let browser: Browser;
let gateway: GatewayProcess;
const pages: http.Server[] = [];

async function origin(): Promise<string> {
  const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>app</title>'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  pages.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

let app: string;
let other: string;

beforeAll(async () => {
  // The CLI is built by the suite's global setup; this page needs no demo app.
  browser = await launchChromium();
  [app, other] = [await origin(), await origin()];
  gateway = await GatewayProcess.start(await freePort(), ['--allowed-origins', app]);
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await gateway?.stop();
  for (const server of pages) server.close();
});

/** In a page on `at`: fetch a ticket from the gateway with `token`, then open the socket with it. */
async function ticketThenSocket(at: string, token: string): Promise<string> {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(at);
    return await page.evaluate(
      async ({ gatewayOrigin, jwt }) => {
        let ticket: string;
        try {
          const response = await fetch(`${gatewayOrigin}/auth/ticket`, { method: 'POST', headers: { authorization: `Bearer ${jwt}` } });
          ticket = ((await response.json()) as { ticket: string }).ticket;
        } catch (error) {
          return `fetch failed: ${(error as Error).name}`;
        }
        return new Promise<string>((resolve) => {
          const socket = new WebSocket(`${gatewayOrigin.replace('http', 'ws')}/ws`, ['authsocket.v1', `ticket.${ticket}`]);
          socket.onmessage = (event) => resolve(`socket: ${JSON.parse(String(event.data)).type}`);
          socket.onclose = (event) => resolve(`closed ${event.code}`);
        });
      },
      { gatewayOrigin: gateway.origin, jwt: token },
    );
  } finally {
    await context.close();
  }
}

describe('a browser app on another origin', () => {
  it('gets a ticket from an allowed origin and authenticates its socket with it; another origin cannot read one', async () => {
    const login = await gateway.request('/auth/login', { json: { username: 'alice', password: 'wonderland' } });
    const { token } = (await login.json()) as { token: string };
    expect(await ticketThenSocket(app, token)).toBe('socket: auth_ok');
    expect(await ticketThenSocket(other, token)).toBe('fetch failed: TypeError');
  }, 60_000);
});
