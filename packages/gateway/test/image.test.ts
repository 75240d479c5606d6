import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';

/**
 * The Dockerfile's final stage, run as written without a container runtime: its COPY lines copy from
 * this checkout (the suite's global setup ran `npm run build`: the same `dist/`s the build stage
 * makes), its RUN lines run in a fresh directory, and its CMD starts the gateway from there with the
 * image's ENV. So the image installs and starts what the tests start, with production dependencies only.
 */

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SECRET = 'image-test-secret-of-at-least-32-bytes-long';
const dirs: string[] = [];

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface FinalStage {
  readonly copies: { from: string[]; to: string }[];
  readonly runs: string[];
  readonly env: Record<string, string>;
  cmd: string[];
}

/** The instructions after the Dockerfile's last FROM. */
function finalStage(dockerfile: string): FinalStage {
  const lines = dockerfile.split('\n');
  const from = lines.map((line, i) => (line.startsWith('FROM ') ? i : -1)).filter((i) => i >= 0).at(-1) ?? -1;
  const stage: FinalStage = { copies: [], runs: [], env: {}, cmd: [] };
  for (const line of lines.slice(from + 1)) {
    const [instruction, ...rest] = line.trim().split(/\s+/);
    const args = rest.join(' ');
    if (instruction === 'COPY') {
      const parts = rest.filter((part) => !part.startsWith('--'));
      expect(rest[0]).toBe('--from=build');
      stage.copies.push({ from: parts.slice(0, -1).map((source) => source.replace(/^\/src\//, '')), to: parts.at(-1) as string });
    } else if (instruction === 'RUN') {
      stage.runs.push(args);
    } else if (instruction === 'ENV') {
      for (const pair of rest) {
        const [name, value] = pair.split('=') as [string, string];
        stage.env[name] = value;
      }
    } else if (instruction === 'CMD') {
      stage.cmd = JSON.parse(args) as string[];
    }
  }
  return stage;
}

describe('the Dockerfile', () => {
  it('installs the gateway with production dependencies only and serves from that directory', async () => {
    const stage = finalStage(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));
    expect(stage.cmd).toEqual(['node', 'packages/gateway/dist/cli.js', 'serve']);
    const app = mkdtempSync(path.join(tmpdir(), 'authsocket-image-'));
    dirs.push(app);
    for (const { from, to } of stage.copies) {
      for (const source of from) {
        const target = to.endsWith('/') || from.length > 1 ? path.join(app, to, path.basename(source)) : path.join(app, to);
        mkdirSync(path.dirname(target), { recursive: true });
        cpSync(path.join(ROOT, source), target, { recursive: true });
      }
    }
    const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...stage.env };
    for (const command of stage.runs) execFileSync('sh', ['-c', command], { cwd: app, env, stdio: 'pipe', timeout: 240_000 });

    // Production only: the test runner and the type checker are not there, the runtime dependencies are.
    expect(existsSync(path.join(app, 'node_modules/vitest'))).toBe(false);
    expect(existsSync(path.join(app, 'node_modules/typescript'))).toBe(false);
    for (const dependency of ['ws', 'jose', 'express', 'ioredis', 'undici', '@authsocket/server']) {
      expect(existsSync(path.join(app, 'node_modules', dependency)), dependency).toBe(true);
    }

    const [command, ...args] = stage.cmd as [string, ...string[]];
    const child = spawn(command === 'node' ? process.execPath : command, [...args, '--host', '127.0.0.1', '--port', '0'], {
      cwd: app,
      env: { ...env, AUTHSOCKET_JWT_SECRET: SECRET, AUTHSOCKET_DRAIN_DELAY: '200ms' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const exited = once(child, 'close').then(([code]) => code as number | null);
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the image's gateway did not start:\n${output}`)), 20_000);
        child.stderr.on('data', () => {
          const found = /authsocket gateway on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
          if (found?.[1]) {
            clearTimeout(timer);
            resolve(found[1]);
          }
        });
      });
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      const iat = Math.floor(Date.now() / 1000);
      const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setIssuedAt(iat).setExpirationTime(iat + 60).sign(new TextEncoder().encode(SECRET));
      const socket = new WebSocket(`${url.replace('http', 'ws')}/ws`, ['authsocket.v1']);
      await once(socket, 'open');
      socket.send(JSON.stringify({ type: 'auth', token }));
      const [frame] = (await once(socket, 'message')) as [Buffer];
      expect(JSON.parse(String(frame))).toMatchObject({ type: 'auth_ok', user: 'alice' });
      const closed = once(socket, 'close');
      child.kill('SIGTERM');
      expect(((await closed) as [number])[0]).toBe(1001);
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  }, 300_000);
});
