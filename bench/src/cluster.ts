/**
 * Fan-out across gateway nodes (issue 7): the built gateway CLI as real processes, measured as
 * (A) 1 node in memory, (B) 1 node + Redis and (C) 3 nodes + Redis, each with fresh processes and a
 * fresh redis-server on a free loopback port.
 *
 *   npm run bench:cluster [-- --quick] [-- --clients N] [-- --save-reference]
 *
 * The orchestrator (this file) starts Redis and the nodes; the load generator is this same file run
 * as a separate child (`--loadgen <json>`), so its CPU is not the nodes'. It opens N authenticated
 * clients (one user each, round-robin over the nodes), then:
 * - broadcast phase: 20 `POST /api/broadcast` one after the other (each awaited), alternating the
 *   node, each carrying `{t, i}` with `t` = `process.hrtime.bigint()` at send. Every process on the
 *   machine shares CLOCK_MONOTONIC, so latency = arrival hrtime - t. Rate = deliveries / (last arrival
 *   - first send).
 * - push phase: one `POST /api/users/:user/messages` per user, 50 requests in flight, each sent
 *   through the node after the user's own (with 3 nodes every push crosses nodes through Redis).
 * Every delivery is counted: lost = expected - received, duplicates and misrouted pushes separately.
 * A phase that is not complete 60 s after it started is reported as failed and the run exits 1.
 *
 * Upgrades are rate-limited per remote address by the server (300 per 10 s); the load generator binds
 * its clients to 250 per loopback source address (127.0.0.1, 127.0.0.2, ...): the nodes, Redis
 * and every request target 127.0.0.1.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import { WebSocket } from 'ws';

const HOST = '127.0.0.1';
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const CLI = path.join(root, 'packages/gateway/dist/cli.js');
const RESULTS = path.join(root, 'bench/results');
const PHASE_TIMEOUT_MS = 60_000;
const BROADCASTS = 20;
const PUSH_CONCURRENCY = 50;
const CONNECT_CONCURRENCY = 100;
const CLIENTS_PER_SOURCE_ADDRESS = 250;

interface LoadConfig {
  ports: number[];
  clients: number;
  broadcasts: number;
  secret: string;
  apiKey: string;
}

interface PhaseResult {
  expected: number;
  received: number;
  lost: number;
  duplicates: number;
  misrouted: number;
  complete: boolean;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  perSecond: number;
  durationMs: number;
  apiDelivered: number;
}

interface LoadResult {
  connectMs: number;
  broadcast: PhaseResult;
  push: PhaseResult;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const hr = () => process.hrtime.bigint();
const msSince = (start: bigint, end = hr()) => Number(end - start) / 1e6;

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

// ---------------------------------------------------------------- HTTP

const agent = new http.Agent({ keepAlive: true, maxSockets: PUSH_CONCURRENCY + 4 });

function request(port: number, method: string, urlPath: string, body?: unknown, apiKey?: string): Promise<{ status: number; json: unknown }> {
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

async function api(port: number, urlPath: string, data: unknown, apiKey: string): Promise<number> {
  const { status, json } = await request(port, 'POST', urlPath, { data }, apiKey);
  if (status !== 200) throw new Error(`POST ${urlPath} on :${port} answered ${status}: ${JSON.stringify(json)}`);
  return (json as { deliveredLocally?: number }).deliveredLocally ?? 0;
}

// ---------------------------------------------------------------- load generator (child process)

async function loadgen(config: LoadConfig): Promise<LoadResult> {
  const { ports, clients, broadcasts, secret, apiKey } = config;
  const key = new TextEncoder().encode(secret);
  const exp = Math.floor(Date.now() / 1000) + 15 * 60; // no reauth during the run
  const tokens: string[] = [];
  for (let i = 0; i < clients; i++) {
    tokens.push(await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(`user${i}`).setIssuedAt().setExpirationTime(exp).sign(key));
  }

  // Delivery bookkeeping, preallocated.
  const bSeen = new Uint8Array(clients * broadcasts);
  const bLat = new Float64Array(clients * broadcasts);
  let bReceived = 0;
  let bDuplicates = 0;
  let bLast = 0n;
  const pSeen = new Uint8Array(clients);
  const pLat = new Float64Array(clients);
  let pReceived = 0;
  let pDuplicates = 0;
  let pMisrouted = 0;
  let pLast = 0n;

  const sockets: WebSocket[] = [];
  const onFrame = (index: number, raw: WebSocket.RawData): void => {
    const now = hr();
    const frame = JSON.parse(raw.toString()) as { type?: string; data?: { t?: unknown; i?: unknown; u?: unknown } };
    if (frame.type !== 'message' || typeof frame.data?.t !== 'string') return;
    const latencyMs = Number(now - BigInt(frame.data.t)) / 1e6;
    if (typeof frame.data.i === 'number') {
      const slot = index * broadcasts + frame.data.i;
      if (bSeen[slot]) {
        bDuplicates++;
        return;
      }
      bSeen[slot] = 1;
      bLat[bReceived++] = latencyMs;
      bLast = now;
    } else if (typeof frame.data.u === 'number') {
      if (frame.data.u !== index) {
        pMisrouted++;
        return;
      }
      if (pSeen[index]) {
        pDuplicates++;
        return;
      }
      pSeen[index] = 1;
      pLat[pReceived++] = latencyMs;
      pLast = now;
    }
  };

  const connect = (index: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const port = ports[index % ports.length]!;
      const localAddress = `127.0.0.${1 + Math.floor(index / CLIENTS_PER_SOURCE_ADDRESS)}`;
      const ws = new WebSocket(`ws://${HOST}:${port}/ws`, 'authsocket.v1', { localAddress, perMessageDeflate: false });
      sockets[index] = ws;
      const timer = setTimeout(() => fail(new Error(`client ${index} not authenticated in 15 s`)), 15_000);
      const fail = (error: Error) => {
        clearTimeout(timer);
        ws.terminate();
        reject(error);
      };
      ws.on('error', (error) => fail(new Error(`client ${index} on :${port}: ${error.message}`)));
      ws.on('unexpected-response', (_req, res) => fail(new Error(`client ${index} on :${port}: upgrade answered ${res.statusCode}`)));
      ws.on('close', (code) => {
        if (!finished) console.error(`[loadgen] client ${index} closed ${code}`);
      });
      ws.on('open', () => ws.send(JSON.stringify({ type: 'auth', token: tokens[index] })));
      ws.on('message', function first(raw) {
        const frame = JSON.parse(raw.toString()) as { type?: string };
        if (frame.type === 'auth_ok') {
          clearTimeout(timer);
          ws.off('message', first);
          ws.on('message', (data) => onFrame(index, data));
          resolve();
        } else {
          fail(new Error(`client ${index}: expected auth_ok, got ${raw.toString().slice(0, 200)}`));
        }
      });
    });

  let finished = false;
  const connectStart = hr();
  let next = 0;
  await withDeadline(
    'connect',
    Promise.all(
      Array.from({ length: Math.min(CONNECT_CONCURRENCY, clients) }, async () => {
        while (next < clients) await connect(next++);
      }),
    ),
  );
  const connectMs = msSince(connectStart);
  console.error(`[loadgen] ${clients} clients authenticated on ${ports.length} node(s) in ${connectMs.toFixed(0)} ms`);
  await sleep(500);

  const waitFor = async (done: () => boolean, start: bigint): Promise<boolean> => {
    while (!done()) {
      if (msSince(start) > PHASE_TIMEOUT_MS) return false;
      await sleep(5);
    }
    await sleep(300); // late duplicates
    return true;
  };
  const summarize = (lat: Float64Array, received: number, expected: number, start: bigint, last: bigint, complete: boolean, extra: Pick<PhaseResult, 'duplicates' | 'misrouted' | 'apiDelivered'>): PhaseResult => {
    const sorted = lat.slice(0, received).sort();
    const durationMs = received > 0 ? msSince(start, last) : Number.NaN;
    return {
      expected,
      received,
      lost: expected - received,
      ...extra,
      complete,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      maxMs: sorted.length ? sorted[sorted.length - 1]! : Number.NaN,
      perSecond: (received / durationMs) * 1000,
      durationMs,
    };
  };

  // Broadcast phase.
  const bExpected = clients * broadcasts;
  let bApi = 0;
  const bStart = hr();
  for (let i = 0; i < broadcasts; i++) {
    if (msSince(bStart) > PHASE_TIMEOUT_MS) break;
    bApi += await api(ports[i % ports.length]!, '/api/broadcast', { t: hr().toString(), i }, apiKey);
  }
  const bComplete = await waitFor(() => bReceived >= bExpected, bStart);
  const broadcast = summarize(bLat, bReceived, bExpected, bStart, bLast, bComplete, { duplicates: bDuplicates, misrouted: 0, apiDelivered: bApi });
  console.error(`[loadgen] broadcast: ${bReceived}/${bExpected} in ${broadcast.durationMs.toFixed(0)} ms`);
  await sleep(500);

  // Push phase.
  let pApi = 0;
  let nextUser = 0;
  const pStart = hr();
  await Promise.all(
    Array.from({ length: Math.min(PUSH_CONCURRENCY, clients) }, async () => {
      while (nextUser < clients && msSince(pStart) <= PHASE_TIMEOUT_MS) {
        const u = nextUser++;
        pApi += await api(ports[(u + 1) % ports.length]!, `/api/users/user${u}/messages`, { t: hr().toString(), u }, apiKey);
      }
    }),
  );
  const pComplete = await waitFor(() => pReceived >= clients, pStart);
  const push = summarize(pLat, pReceived, clients, pStart, pLast, pComplete, { duplicates: pDuplicates, misrouted: pMisrouted, apiDelivered: pApi });
  console.error(`[loadgen] push: ${pReceived}/${clients} in ${push.durationMs.toFixed(0)} ms`);

  finished = true;
  for (const ws of sockets) ws.terminate();
  agent.destroy();
  return { connectMs, broadcast, push };
}

async function withDeadline<T>(what: string, promise: Promise<T>, ms = PHASE_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not complete in ${ms / 1000} s`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------- processes

const children = new Set<ChildProcess>();

function killGroupNow(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

async function stop(child: ChildProcess): Promise<void> {
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

function launch(command: string, args: string[], stdio: 'pipe' | 'ipc' = 'pipe'): { child: ChildProcess; output: () => string } {
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

async function freePorts(count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => net.createServer());
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.listen(0, HOST, resolve))));
  const ports = servers.map((server) => (server.address() as net.AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  return ports;
}

async function startRedis(): Promise<{ url: string; stop: () => Promise<void> }> {
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
    stop: async () => {
      await stop(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startNode(port: number, secret: string, apiKey: string, redisUrl?: string): Promise<ChildProcess> {
  const args = [CLI, 'serve', '--port', String(port), '--host', HOST, '--jwt-secret', secret, '--api-key', apiKey, '--demo', '--log-level', 'warn'];
  if (redisUrl) args.push('--redis-url', redisUrl);
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

async function runLoadgen(config: LoadConfig): Promise<LoadResult> {
  const { child } = launch(process.execPath, [fileURLToPath(import.meta.url), '--loadgen', JSON.stringify(config)], 'ipc');
  try {
    return await withDeadline(
      'load generator',
      new Promise<LoadResult>((resolve, reject) => {
        child.once('message', (message) => resolve(message as LoadResult));
        child.once('exit', (code) => reject(new Error(`load generator exited with ${code} before reporting`)));
      }),
      4 * PHASE_TIMEOUT_MS + 60_000,
    );
  } finally {
    await stop(child);
  }
}

interface ConfigResult extends LoadResult {
  name: string;
  label: string;
  nodes: number;
  redis: boolean;
  nodeCpuMs: number;
}

/** utime + stime of a process in ms, from /proc (Linux). */
function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // clock ticks, USER_HZ = 100
  } catch {
    return Number.NaN;
  }
}

async function measure(name: string, label: string, nodes: number, useRedis: boolean, clients: number): Promise<ConfigResult> {
  const secret = randomBytes(32).toString('hex');
  const apiKey = randomBytes(24).toString('hex');
  const redis = useRedis ? await startRedis() : undefined;
  const gateways: ChildProcess[] = [];
  try {
    const ports = await freePorts(nodes);
    for (const port of ports) gateways.push(await startNode(port, secret, apiKey, redis?.url));
    const before = gateways.reduce((sum, child) => sum + cpuMs(child.pid), 0);
    console.error(`[${name}] ${label}: nodes on ${ports.join(', ')}${redis ? `, Redis ${redis.url}` : ''}`);
    const result = await runLoadgen({ ports, clients, broadcasts: BROADCASTS, secret, apiKey });
    const nodeCpuMs = gateways.reduce((sum, child) => sum + cpuMs(child.pid), 0) - before;
    return { name, label, nodes, redis: useRedis, nodeCpuMs, ...result };
  } finally {
    await Promise.all(gateways.map((child) => stop(child)));
    await redis?.stop();
  }
}

// ---------------------------------------------------------------- report

const f = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '—');
const k = (value: number) => (Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '—');

function table(results: ConfigResult[]): string {
  const a = results[0]!;
  const head = ['config', 'bc p50 ms', 'bc p99 ms', 'bc max ms', 'deliveries/s', 'bc lost', 'push p50 ms', 'push p99 ms', 'push max ms', 'pushes/s', 'push lost'];
  const rows = results.map((r) => [
    `${r.name} ${r.label}`,
    f(r.broadcast.p50Ms),
    f(r.broadcast.p99Ms),
    f(r.broadcast.maxMs),
    k(r.broadcast.perSecond),
    String(r.broadcast.lost + r.broadcast.duplicates),
    f(r.push.p50Ms),
    f(r.push.p99Ms),
    f(r.push.maxMs),
    k(r.push.perSecond),
    String(r.push.lost + r.push.duplicates + r.push.misrouted),
  ]);
  for (const r of results.slice(1)) {
    rows.push([
      `${r.name}/A`,
      `${f(r.broadcast.p50Ms / a.broadcast.p50Ms, 2)}x`,
      `${f(r.broadcast.p99Ms / a.broadcast.p99Ms, 2)}x`,
      `${f(r.broadcast.maxMs / a.broadcast.maxMs, 2)}x`,
      `${f(r.broadcast.perSecond / a.broadcast.perSecond, 2)}x`,
      '',
      `${f(r.push.p50Ms / a.push.p50Ms, 2)}x`,
      `${f(r.push.p99Ms / a.push.p99Ms, 2)}x`,
      `${f(r.push.maxMs / a.push.maxMs, 2)}x`,
      `${f(r.push.perSecond / a.push.perSecond, 2)}x`,
      '',
    ]);
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join(' | ')} |`;
  return [line(head), `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...rows.map(line)].join('\n');
}

function ratios(results: ConfigResult[]): Record<string, Record<string, number>> {
  const a = results[0]!;
  const out: Record<string, Record<string, number>> = {};
  for (const r of results.slice(1)) {
    out[`${r.name}/A`] = {
      broadcastP50: r.broadcast.p50Ms / a.broadcast.p50Ms,
      broadcastP99: r.broadcast.p99Ms / a.broadcast.p99Ms,
      deliveriesPerSecond: r.broadcast.perSecond / a.broadcast.perSecond,
      pushP50: r.push.p50Ms / a.push.p50Ms,
      pushP99: r.push.p99Ms / a.push.p99Ms,
      pushesPerSecond: r.push.perSecond / a.push.perSecond,
    };
  }
  return out;
}

async function main(argv: string[]): Promise<number> {
  const loadIndex = argv.indexOf('--loadgen');
  if (loadIndex >= 0) {
    const result = await loadgen(JSON.parse(argv[loadIndex + 1]!) as LoadConfig);
    await new Promise<void>((resolve, reject) => process.send!(result, (error: Error | null) => (error ? reject(error) : resolve())));
    return 0;
  }

  const quick = argv.includes('--quick');
  const clientsIndex = argv.indexOf('--clients');
  const clients = clientsIndex >= 0 ? Number(argv[clientsIndex + 1]) : quick ? 600 : 3_000;
  if (!Number.isInteger(clients) || clients < 1 || clients > 6_000) throw new Error('--clients: an integer from 1 to 6000');
  const started = Date.now();
  const loadBefore = os.loadavg();
  console.error(`bench:cluster: ${clients} clients, ${BROADCASTS} broadcasts, ${os.cpus().length} CPUs, load ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`);

  const results: ConfigResult[] = [];
  results.push(await measure('A', '1 node, memory', 1, false, clients));
  results.push(await measure('B', '1 node + Redis', 1, true, clients));
  results.push(await measure('C', '3 nodes + Redis', 3, true, clients));

  const wallS = (Date.now() - started) / 1000;
  process.stdout.write(`\nFan-out, ${clients} clients (${BROADCASTS} broadcasts = ${clients * BROADCASTS} deliveries; ${clients} pushes), ${os.cpus().length} CPUs\n\n`);
  process.stdout.write(`${table(results)}\n`);
  process.stdout.write(`\nlost counts lost + duplicate (+ misrouted) deliveries; node CPU: ${results.map((r) => `${r.name} ${k(r.nodeCpuMs)} ms`).join(', ')}; wall ${wallS.toFixed(1)} s\n`);

  const report = {
    date: new Date().toISOString(),
    command: `npm run bench:cluster${argv.length ? ` -- ${argv.join(' ')}` : ''}`,
    machine: {
      cpus: os.cpus().length,
      model: os.cpus()[0]?.model,
      node: process.version,
      redis: execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).trim(),
      loadavgBefore: loadBefore,
      loadavgAfter: os.loadavg(),
    },
    options: { clients, broadcasts: BROADCASTS, pushConcurrency: PUSH_CONCURRENCY, phaseTimeoutMs: PHASE_TIMEOUT_MS, quick },
    configs: results,
    ratios: ratios(results),
    wallSeconds: wallS,
  };
  mkdirSync(RESULTS, { recursive: true });
  const json = `${JSON.stringify(report, null, 2)}\n`;
  writeFileSync(path.join(RESULTS, 'cluster.json'), json);
  if (argv.includes('--save-reference')) writeFileSync(path.join(RESULTS, 'reference-cluster.json'), json);

  const failed = results.filter((r) => !r.broadcast.complete || !r.push.complete || r.broadcast.lost || r.push.lost || r.push.misrouted);
  for (const r of failed) console.error(`FAILED ${r.name}: broadcast ${r.broadcast.received}/${r.broadcast.expected}, push ${r.push.received}/${r.push.expected} (misrouted ${r.push.misrouted})`);
  return failed.length ? 1 : 0;
}

process.on('exit', () => {
  for (const child of children) killGroupNow(child);
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => process.exit(130));
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  },
);
