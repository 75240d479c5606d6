import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { SUBPROTOCOL, TICKET_PROTOCOL_PREFIX } from '@authsocket/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Canary } from './helpers/canary.js';
import { Client } from './helpers/client.js';
import { API_KEY, type GatewayHandle, gatewayHandle } from './helpers/gateway.js';
import { encodeFrame, Opcode, RawPeer, rawExchange, textFrame, upgradeRequest } from './helpers/raw.js';
import { SECRET, unsigned } from './helpers/tokens.js';

/**
 * The cross-check: the built `authsocket serve` CLI (node packages/gateway/dist/cli.js, built by
 * the root vitest global setup's `tsc -b`) in its own process, attacked over 127.0.0.1 exactly as
 * the in-process gateway is in the other files, with a canary of another user throughout.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = fileURLToPath(new URL('../../packages/gateway/dist/cli.js', import.meta.url));
const APP_ORIGIN = 'https://app.example.com';

let child: ChildProcess;
let stdout = '';
let stderr = '';
let gateway: GatewayHandle;
let canary: Canary;
/** Every credential the attacks use, to check that none of them reaches the logs. */
const secrets: string[] = [];

beforeAll(async () => {
  // Only the test's own variables: none of this machine's AUTHSOCKET_* or PORT.
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('AUTHSOCKET_') && name !== 'PORT'));
  child = spawn(
    process.execPath,
    [CLI, 'serve', '--host', '127.0.0.1', '--port', '0', '--ticket-mode', 'required', '--allowed-origins', APP_ORIGIN, '--api-key', API_KEY],
    { cwd: ROOT, env: { ...env, AUTHSOCKET_JWT_SECRET: SECRET }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const listening = await new Promise<{ url: string; wsUrl: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the CLI did not start:\n${stderr}`)), 15_000);
    const onData = () => {
      for (const line of stdout.split('\n')) {
        if (!line.startsWith('{')) continue;
        const record = JSON.parse(line) as { msg?: string; url?: string; wsUrl?: string };
        if (record.msg === 'gateway listening' && record.url && record.wsUrl) {
          clearTimeout(timer);
          child.stdout?.off('data', onData);
          return resolve({ url: record.url, wsUrl: record.wsUrl });
        }
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`the CLI exited with ${code}:\n${stderr}`)));
  });
  gateway = gatewayHandle({ ...listening, close: async () => {} });
  canary = await Canary.onGateway(gateway);
});
afterAll(() => {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

describe('the built authsocket CLI under attack', () => {
  it('answers a missing, unknown, malformed and used ticket with one identical 401', async () => {
    const used = await gateway.ticket('alice');
    secrets.push(used);
    (await Client.withTicket(gateway.wsUrl, used)).close();
    const unknown = randomBytes(32).toString('base64url');
    secrets.push(unknown);
    const answers = await Promise.all(
      [[SUBPROTOCOL], [SUBPROTOCOL, `${TICKET_PROTOCOL_PREFIX}${unknown}`], [SUBPROTOCOL, 'ticket.x'], [SUBPROTOCOL, `${TICKET_PROTOCOL_PREFIX}${used}`]].map(
        (protocols) => rawExchange(gateway.port, upgradeRequest(gateway.port, { protocols })),
      ),
    );
    expect(answers[0]?.raw.toString('latin1')).toMatch(/^HTTP\/1\.1 401 Unauthorized\r\n[\s\S]*\r\n\r\nunauthorized$/);
    for (const answer of answers) expect(answer.raw.toString('latin1')).toBe(answers[0]?.raw.toString('latin1'));
    await canary.assertAlive();
  });

  it('opens exactly one socket out of 50 parallel redemptions of one ticket', async () => {
    const ticket = await gateway.ticket('alice');
    secrets.push(ticket);
    const outcomes = await Promise.allSettled(Array.from({ length: 50 }, () => Client.withTicket(gateway.wsUrl, ticket)));
    const opened = outcomes.filter((outcome) => outcome.status === 'fulfilled');
    expect(opened).toHaveLength(1);
    expect(outcomes.filter((outcome) => outcome.status === 'rejected').map((outcome) => (outcome.reason as { status: number }).status)).toEqual(
      Array.from({ length: 49 }, () => 401),
    );
    for (const outcome of opened) outcome.value.close();
    await canary.assertAlive();
  });

  it('refuses foreign origins with 403 and oversized headers with 431', async () => {
    const ticket = await gateway.ticket('alice');
    secrets.push(ticket);
    for (const origin of ['null', 'https://evil.example', 'https://app.example.com.evil.com', 'http://app.example.com']) {
      const answer = await rawExchange(gateway.port, upgradeRequest(gateway.port, { protocols: [SUBPROTOCOL, `ticket.${ticket}`], headers: { Origin: origin } }));
      expect([origin, answer.status, answer.body]).toEqual([origin, 403, 'forbidden']);
    }
    const huge = await rawExchange(gateway.port, upgradeRequest(gateway.port, { headers: { 'x-big': 'v'.repeat(64 * 1024) } }));
    expect(huge.status).toBe(431);
    await canary.assertAlive();
  });

  it('refuses alg none and a 1 MB bearer token at the ticket endpoint', async () => {
    const none = unsigned({ alg: 'none' }, { sub: 'alice', exp: Math.floor(Date.now() / 1000) + 600 });
    secrets.push(none);
    expect((await gateway.ticketResponse(none)).status).toBe(401);
    const request = `POST /auth/ticket HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${'a'.repeat(1024 * 1024)}\r\nConnection: close\r\n\r\n`;
    expect((await rawExchange(gateway.port, request)).status).toBe(431);
    // Still writing when the answer comes: the 431 is read after the gateway's orderly close (a close
    // with the request unread would have reset the connection and lost it).
    const stillWriting = await rawExchange(gateway.port, request, { more: { afterMs: 300, bytes: 'b'.repeat(64 * 1024) } });
    expect(stillWriting.status).toBe(431);
    expect(stillWriting.head).toMatch(/^connection: close$/im);
    await canary.assertAlive();
  });

  it('reads and drops what a refused client keeps sending for a bounded time, then cuts it', async () => {
    // Half-open: it keeps writing after the gateway's FIN, as a client that never reads would.
    const socket = net.connect({ port: gateway.port, host: '127.0.0.1', allowHalfOpen: true });
    const answer: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => answer.push(chunk));
    socket.on('error', () => {});
    await once(socket, 'connect');
    socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'v'.repeat(64 * 1024)}`);
    // Header bytes without end, for at most 15 s (LINGER_MS is 2 s): the gateway must end it first.
    const chunk = 'v'.repeat(16 * 1024);
    let cut = false;
    for (let i = 0; i < 1_500 && !cut; i++) {
      if (socket.destroyed || !socket.writable) cut = true;
      else socket.write(chunk);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    socket.destroy();
    expect(cut).toBe(true);
    expect(Buffer.concat(answer).toString('latin1')).toMatch(/^HTTP\/1\.1 431 /);
    await canary.assertAlive();
  });

  it.each<[string, number, Buffer, string]>([
    ['invalid JSON', 4400, textFrame('{"type":'), 'frame is not valid JSON'],
    ['a __proto__ key', 4400, textFrame('{"type":"message","data":{"__proto__":{"polluted":true}}}'), "frame contains the forbidden key '__proto__'"],
    ['a binary frame', 1003, encodeFrame({ opcode: Opcode.Binary, payload: 'x' }), 'binary frames are not accepted'],
    ['invalid UTF-8', 1007, encodeFrame({ payload: Buffer.from([0x22, 0xff, 0x22]) }), ''],
    ['a 70 KB frame', 1009, textFrame(`{"type":"message","data":"${'x'.repeat(70_000)}"}`), ''],
    ['a permessage-deflate frame', 1002, encodeFrame({ rsv1: true, payload: 'x' }), ''],
    ['a flood of 2,000 pings', 4429, Buffer.concat(Array.from({ length: 2_000 }, () => textFrame('{"type":"ping"}'))), 'rate limited'],
  ])('closes %s with %i', async (_name, code, bytes, reason) => {
    const ticket = await gateway.ticket('mallory');
    secrets.push(ticket);
    const peer = await RawPeer.connect(gateway.port, { protocols: [SUBPROTOCOL, `${TICKET_PROTOCOL_PREFIX}${ticket}`] });
    await peer.next((frame) => frame.type === 'auth_ok');
    peer.write(bytes);
    expect(await peer.closed()).toEqual({ code, reason });
    await canary.assertAlive();
  });

  it('wrote no ticket or token of the attacks above to its logs', () => {
    expect(secrets.length).toBeGreaterThan(10);
    for (const secret of secrets) {
      expect(stdout).not.toContain(secret);
      expect(stderr).not.toContain(secret);
    }
  });

  it('shuts down on SIGTERM: the canary gets 1001 and the process exits 0', async () => {
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    expect(await canary.client.closed).toEqual({ code: 1001, reason: 'server shutting down' });
    expect((await exited)[0]).toBe(0);
  });
});
