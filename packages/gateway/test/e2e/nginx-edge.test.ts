import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Resources } from '../multinode/harness/cleanup.js';
import { Nginx } from '../multinode/harness/balancers.js';
import { signToken } from '../multinode/harness/clients.js';
import { GatewayNode } from '../multinode/harness/gateway-node.js';
import { launchChromium } from './harness.js';

/**
 * A browser app on its own origin, through deploy/nginx.conf to a CLI node: the ticket endpoint's
 * CORS passes the proxy (preflight included), the WebSocket upgrades through it, and the gateway's
 * heartbeat (300 ms here) keeps an idle socket open across many intervals. Real Chromium, nginx, CLI.
 */

const resources = new Resources();
let browser: Browser;
let node: GatewayNode;
let proxy: Nginx;
let app: string;

beforeAll(async () => {
  browser = await launchChromium();
  const page = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>app</title>'));
  await new Promise<void>((resolve) => page.listen(0, '127.0.0.1', resolve));
  resources.add(page, (server) => void server.close());
  app = `http://127.0.0.1:${(page.address() as AddressInfo).port}`;
  node = resources.add(await GatewayNode.start({ name: 'E', redis: [], args: ['--allowed-origins', app, '--heartbeat-interval', '300ms'] }), (n) => n.kill());
  proxy = resources.add(await Nginx.start([{ name: 'E', host: '127.0.0.1', port: node.port }]), (p) => p.stop());
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await resources.disposeAll();
});

describe('a browser app through nginx', () => {
  it('gets a ticket across origins through nginx, upgrades through it, and stays open over 8 heartbeats, then gets a push', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(app);
      const token = await signToken('alice');
      const opened = await page.evaluate(
        async ({ edge, jwt }) => {
          const response = await fetch(`${edge}/auth/ticket`, { method: 'POST', headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' } });
          const { ticket } = (await response.json()) as { ticket: string };
          const socket = new WebSocket(`${edge.replace('http', 'ws')}/ws`, ['authsocket.v1', `ticket.${ticket}`]);
          const frames: string[] = [];
          (window as unknown as { frames_: string[]; socket_: WebSocket }).frames_ = frames;
          (window as unknown as { socket_: WebSocket }).socket_ = socket;
          socket.onmessage = (event) => frames.push(String(event.data));
          return new Promise<string>((resolve) => {
            socket.onopen = () => setTimeout(() => resolve(frames[0] ?? 'no frame'), 200);
            socket.onclose = (event) => resolve(`closed ${event.code}`);
          });
        },
        { edge: proxy.url, jwt: token },
      );
      expect(JSON.parse(opened)).toMatchObject({ type: 'auth_ok', user: 'alice' });
      await page.waitForTimeout(2_400);
      expect(await page.evaluate(() => (window as unknown as { socket_: WebSocket }).socket_.readyState)).toBe(1);
      expect((await node.push('alice', 'after the idle stretch')).status).toBe(200);
      await page.waitForFunction(() => (window as unknown as { frames_: string[] }).frames_.some((frame) => frame.includes('after the idle stretch')), undefined, { timeout: 5_000 });
    } finally {
      await context.close();
    }
  }, 60_000);
});
