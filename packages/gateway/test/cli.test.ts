import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SUBPROTOCOL, TICKET_PROTOCOL_PREFIX } from '@authsocket/protocol';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type CliIo, OPTIONS, runCli } from '../src/index.js';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { USAGE } from '../src/help.js';
import { API_KEY, buildCli, SECRET, spawnCli, TestClient } from './helpers.js';

function fakeIo(): CliIo & { out: string; err: string } {
  const io = {
    out: '',
    err: '',
    stdout: { write: (text: string) => (io.out += text) },
    stderr: { write: (text: string) => (io.err += text) },
    signals: { once: () => io.signals, off: () => io.signals } as unknown as CliIo['signals'],
  };
  return io;
}

describe('runCli', () => {
  it('prints the usage without a command', async () => {
    const io = fakeIo();
    expect(await runCli([], {}, io)).toBe(0);
    expect(io.out).toBe(`${USAGE}\n`);
    expect(io.out).toContain('authsocket check-config [options]');
  });

  it('lists every option with its variable in serve --help', async () => {
    const io = fakeIo();
    expect(await runCli(['serve', '--help'], {}, io)).toBe(0);
    for (const spec of OPTIONS) {
      expect(io.out).toContain(`--${spec.flag}`);
      expect(io.out).toContain(`env ${spec.env}`);
      if (spec.key !== 'configFile') expect(io.out).toContain(`file key ${spec.fileKey}`);
    }
    expect(io.out).toContain('authsocket check-config [options]');
    expect(io.out).toContain('--reauth-window <duration>\n      reauth policy: ask for a fresh token this long before `exp` [default: 30s]');
  });

  it('refuses an unknown command with exit code 2', async () => {
    const io = fakeIo();
    expect(await runCli(['server'], {}, io)).toBe(2);
    expect(io.err).toBe(`authsocket: unknown command "server"\n${USAGE}\n`);
  });

  it('refuses invalid configuration with exit code 2 and the option named, before listening', async () => {
    const io = fakeIo();
    expect(await runCli(['serve', '--demo', '--port', '0'], { AUTHSOCKET_EXPIRY_POLICY: 'later' }, io)).toBe(2);
    expect(io.err).toBe(
      'authsocket: invalid option --expiry-policy (AUTHSOCKET_EXPIRY_POLICY): expected one of reauth, close, ignore, got "later"\n',
    );
    expect(io.out).toBe('');
  });
});

describe('the built authsocket CLI', () => {
  const children = new Set<ChildProcess>();

  beforeAll(() => {
    // The CLI runs as plain JavaScript in a child process: build it (and what it imports) first.
    buildCli();
  }, 120_000);

  afterEach(() => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    children.clear();
  });

  function run(args: string[], env: Record<string, string> = {}) {
    const started = spawnCli(args, env);
    children.add(started.child);
    return started;
  }

  it('fails fast on bad configuration: exit code 2, the option named on stderr, nothing on stdout', async () => {
    const { output, exited } = run(['serve', '--demo', '--reauth-window', 'abc']);
    expect(await exited).toBe(2);
    expect(output.stderr).toBe(
      'authsocket: invalid option --reauth-window (AUTHSOCKET_REAUTH_WINDOW): expected a duration like 30s, got "abc"\n',
    );
    expect(output.stdout).toBe('');
  });

  it('fails fast without a JWT key outside demo mode', async () => {
    const { output, exited } = run(['serve'], { AUTHSOCKET_API_KEY: 'an-api-key-of-16-chars' });
    expect(await exited).toBe(2);
    expect(output.stderr).toMatch(/^authsocket: missing option: a JWT key is required: set --jwt-secret \(AUTHSOCKET_JWT_SECRET\)/);
  });

  it('exits 1 with the reason when the port is taken', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as AddressInfo;
    try {
      const { output, exited } = run(['serve', '--demo', '--host', '127.0.0.1', '--port', String(port)]);
      expect(await exited).toBe(1);
      expect(output.stderr).toBe(`authsocket: cannot listen on 127.0.0.1:${port}: EADDRINUSE\n`);
    } finally {
      taken.close();
    }
  });

  it('serves the demo and shuts down gracefully on SIGTERM: sockets get 1001, exit code 0', async () => {
    const { child, output, exited } = run(['serve', '--demo', '--host', '127.0.0.1'], { PORT: '0' });
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner; stderr: ${output.stderr}`)), 15_000);
      child.stderr?.on('data', () => {
        const found = /authsocket gateway on (http:\/\/127\.0\.0\.1:\d+) \(WebSocket (ws:\S+)\)/.exec(output.stderr);
        if (found?.[1]) {
          clearTimeout(timer);
          resolve(found[1]);
        }
      });
    });
    const apiKey = /demo API key for this run: (\S+)/.exec(output.stderr)?.[1] as string;
    expect(apiKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(output.stdout).not.toContain(apiKey);

    const login = await fetch(`${url}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'alice', password: 'wonderland' }),
    });
    const { token } = (await login.json()) as { token: string };
    const issued = await fetch(`${url}/auth/ticket`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    const { ticket } = (await issued.json()) as { ticket: string };
    const client = new TestClient(`${url.replace('http', 'ws')}/ws`, [SUBPROTOCOL, `${TICKET_PROTOCOL_PREFIX}${ticket}`]);
    await client.next((frame) => frame.type === 'auth_ok');
    const count = await fetch(`${url}/api/users/alice/connections`, { headers: { authorization: `Bearer ${apiKey}` } });
    expect(await count.json()).toMatchObject({ connectedLocally: 1 });

    child.kill('SIGTERM');
    expect(await client.closed).toEqual({ code: 1001, reason: 'server shutting down' });
    expect(await exited).toBe(0);
    const messages = output.stdout
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { msg: string }).msg);
    expect(messages).toContain('gateway listening');
    expect(messages.at(-1)).toBe('gateway stopped');
  });

  /** Starts `serve --demo` on a free port and resolves with its URL and a first-message-authenticated socket. */
  async function servedWithSocket(args: string[]) {
    const cli = run(['serve', '--demo', '--host', '127.0.0.1', '--api-key', API_KEY, ...args], { PORT: '0' });
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner; stderr: ${cli.output.stderr}`)), 15_000);
      cli.child.stderr?.on('data', () => {
        const found = /authsocket gateway on (http:\/\/127\.0\.0\.1:\d+)/.exec(cli.output.stderr);
        if (found?.[1]) {
          clearTimeout(timer);
          resolve(found[1]);
        }
      });
    });
    const login = await fetch(`${url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', password: 'wonderland' }) });
    const { token } = (await login.json()) as { token: string };
    const client = new TestClient(`${url.replace('http', 'ws')}/ws`, [SUBPROTOCOL]);
    await once(client.socket, 'open');
    client.send({ type: 'auth', token });
    await client.next((frame) => frame.type === 'auth_ok');
    return { ...cli, url, client };
  }

  it('drains on SIGTERM with --drain-delay: /healthz turns 503 closing at once while the socket is still served, then 1001 and exit 0', async () => {
    const { child, exited, url, client } = await servedWithSocket(['--drain-delay', '1500ms']);
    child.kill('SIGTERM');
    for (let tries = 0; (await fetch(`${url}/healthz`)).status !== 503; tries++) {
      if (tries >= 50) throw new Error('/healthz never turned 503 during the drain');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(await (await fetch(`${url}/healthz`)).json()).toMatchObject({ status: 'closing' });
    // Still serving its connections meanwhile: a push reaches the socket.
    const pushed = await fetch(`${url}/api/users/alice/messages`, { method: 'POST', headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ data: 'during the drain' }) });
    expect(await pushed.json()).toMatchObject({ deliveredLocally: 1 });
    await client.next((frame) => frame.type === 'message' && frame.data === 'during the drain');
    expect(await client.closed).toEqual({ code: 1001, reason: 'server shutting down' });
    expect(await exited).toBe(0);
  });

  it('exits 1 when the shutdown passes --shutdown-timeout', async () => {
    const { child, exited, output } = await servedWithSocket(['--drain-delay', '60s', '--shutdown-timeout', '500ms']);
    child.kill('SIGTERM');
    expect(await exited).toBe(1);
    expect(output.stderr).toContain('authsocket: shutdown did not finish within 500 ms; exiting');
  });

  it('check-config prints the resolved configuration, secrets masked, with each value\'s source: exit 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'authsocket-check-config-'));
    const path = join(dir, 'authsocket.json');
    writeFileSync(path, JSON.stringify({ apiKey: API_KEY, ticketTtl: '45s', reauthWindow: '5s', perMessageAuth: true }));
    chmodSync(path, 0o600);
    const { output, exited } = run(['check-config', '--config', path, '--reauth-window', '3s'], { AUTHSOCKET_JWT_SECRET: SECRET, AUTHSOCKET_TICKET_TTL: '40s' });
    expect(await exited).toBe(0);
    expect(output.stderr).toBe('');
    const printed = JSON.parse(output.stdout) as { valid: boolean; configFile: string; options: Record<string, { value: unknown; source: string }> };
    expect(printed.valid).toBe(true);
    expect(printed.configFile).toBe(path);
    expect(printed.options).toMatchObject({
      jwtSecret: { value: '[redacted]', source: 'env' },
      apiKey: { value: '[redacted]', source: 'file' },
      ticketTtl: { value: 40_000, source: 'env' },
      reauthWindow: { value: 3_000, source: 'flag' },
      perMessageAuth: { value: true, source: 'file' },
      authTimeout: { value: 10_000, source: 'default' },
      host: { value: null, source: 'default' },
    });
    expect(Object.keys(printed.options)).toEqual(OPTIONS.map((spec) => spec.fileKey));
    expect(output.stdout).not.toContain(SECRET);
    expect(output.stdout).not.toContain(API_KEY);
  });

  it('check-config refuses an invalid configuration as serve does: the error on stderr, exit 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'authsocket-check-config-'));
    const path = join(dir, 'typo.json');
    writeFileSync(path, JSON.stringify({ ticketTTL: '30s' }));
    const typo = run(['check-config', '--demo'], { AUTHSOCKET_CONFIG: path });
    expect(await typo.exited).toBe(2);
    expect(typo.output.stderr).toBe(`authsocket: invalid config file ${path}: unknown key "ticketTTL"; did you mean "ticketTtl"?\n`);
    expect(typo.output.stdout).toBe('');
    // The server library's checks too, under the flag that fed them.
    const library = run(['check-config', '--jwt-algorithms', 'ES256'], { AUTHSOCKET_JWT_SECRET: SECRET });
    expect(await library.exited).toBe(2);
    expect(library.output.stderr).toBe(
      "authsocket: invalid option --jwt-algorithms (AUTHSOCKET_JWT_ALGORITHMS): 'ES256' cannot be used with a secret; allowed: HS256, HS384, HS512\n",
    );
  });
});
