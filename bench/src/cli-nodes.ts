/**
 * The gateway CLI as real processes, for the multi-process benches (`cluster.ts`, `scale-out.ts`):
 * free loopback ports, a fresh redis-server, gateway nodes started and health-checked, process
 * groups killed on exit, CPU and RSS from /proc, and a keep-alive JSON request helper.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const HOST = '127.0.0.1';
const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, '../..');
export const CLI = path.join(root, 'packages/gateway/dist/cli.js');

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
export const hr = () => process.hrtime.bigint();
export const msSince = (start: bigint, end = hr()) => Number(end - start) / 1e6;

export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

// ---------------------------------------------------------------- HTTP

export const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

export function request(port: number, method: string, urlPath: string, body?: unknown, apiKey?: string): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = {};
    if (payload !== undefined) headers['content-type'] = 'application/json';
    if (apiKey !== undefined) headers.authorization = `Bearer ${apiKey}`;
    const req = http.request({ host: HOST, port, method, path: urlPath, headers, agent, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = text;
        }
        resolve({ status: res.statusCode ?? 0, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath} on :${port} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

// ---------------------------------------------------------------- processes

export const children = new Set<ChildProcess>();

export function killGroupNow(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

export async function stop(child: ChildProcess): Promise<void> {
  children.delete(child);
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    return;
  }
  const timer = setTimeout(() => killGroupNow(child), 3_000);
  await exited;
  clearTimeout(timer);
}

export function launch(command: string, args: string[], stdio: 'pipe' | 'ipc' = 'pipe'): { child: ChildProcess; output: () => string } {
  const child = spawn(command, args, {
    detached: true,
    stdio: stdio === 'ipc' ? ['ignore', 'inherit', 'inherit', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-4_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { child, output: () => tail };
}

export async function freePorts(count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => net.createServer());
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.listen(0, HOST, resolve))));
  const ports = servers.map((server) => (server.address() as net.AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  return ports;
}

export async function startRedis(): Promise<{ url: string; port: number; pid: number; stop: () => Promise<void> }> {
  const [port] = await freePorts(1);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'authsocket-bench-redis-'));
  const { child, output } = launch('redis-server', ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', dir]);
  const started = hr();
  while (!output().includes('Ready to accept connections')) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`redis-server exited:\n${output()}`);
    if (msSince(started) > 5_000) throw new Error(`redis-server did not start in 5 s:\n${output()}`);
    await sleep(20);
  }
  return {
    url: `redis://${HOST}:${port}`,
    port: port!,
    pid: child.pid!,
    stop: async () => {
      await stop(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function startNode(port: number, secret: string, apiKey: string, redisUrl?: string, extraArgs: readonly string[] = []): Promise<ChildProcess> {
  const args = [CLI, 'serve', '--port', String(port), '--host', HOST, '--jwt-secret', secret, '--api-key', apiKey, '--demo', '--log-level', 'warn'];
  if (redisUrl) args.push('--redis-url', redisUrl);
  args.push(...extraArgs);
  const { child, output } = launch(process.execPath, args);
  const started = hr();
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`gateway on :${port} exited:\n${output()}`);
    if (msSince(started) > 15_000) throw new Error(`gateway on :${port} not healthy in 15 s:\n${output()}`);
    try {
      const { status, json } = await request(port, 'GET', '/healthz');
      if (status === 200 && (!redisUrl || (json as { broker?: unknown }).broker === 'ready')) return child;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
}

/** utime + stime of a process in ms, from /proc (Linux). */
export function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // clock ticks, USER_HZ = 100
  } catch {
    return Number.NaN;
  }
}

/** Resident set size of a process in bytes (VmRSS), from /proc (Linux). */
export function rssBytes(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

process.on('exit', () => {
  for (const child of children) killGroupNow(child);
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => process.exit(130));
}
