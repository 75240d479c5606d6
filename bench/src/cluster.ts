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
import { type ChildProcess, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import { WebSocket } from 'ws';
import { agent, cpuMs, freePorts, HOST, hr, launch, msSince, percentile, request, root, sleep, startNode, startRedis, stop } from './cli-nodes.js';

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
  /** The gateways' and redis-server's pids, for CPU per phase from /proc. */
  nodePids: number[];
  redis?: { port: number; pid: number };
}

/** What one phase cost: CPU of the nodes and of redis-server, and Redis commands by name. */
interface PhaseCost {
  nodeCpuMs: number;
  redisCpuMs: number;
  /** Commands clients sent (one round trip each) over the phase, by name, from MONITOR. */
  redisCommands: Record<string, number>;
  /** Commands Lua scripts ran inside those (no round trip), by name. */
  redisScriptCommands: Record<string, number>;
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
  cost: PhaseCost;
}

interface LoadResult {
  connectMs: number;
  broadcast: PhaseResult;
  push: PhaseResult;
}

// ---------------------------------------------------------------- HTTP

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
  const summarize = (lat: Float64Array, received: number, expected: number, start: bigint, last: bigint, complete: boolean, extra: Pick<PhaseResult, 'duplicates' | 'misrouted' | 'apiDelivered' | 'cost'>): PhaseResult => {
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
  const bMark = await costMark(config);
  const bStart = hr();
  for (let i = 0; i < broadcasts; i++) {
    if (msSince(bStart) > PHASE_TIMEOUT_MS) break;
    bApi += await api(ports[i % ports.length]!, '/api/broadcast', { t: hr().toString(), i }, apiKey);
  }
  const bComplete = await waitFor(() => bReceived >= bExpected, bStart);
  const bCost = costSince(bMark, config);
  const broadcast = summarize(bLat, bReceived, bExpected, bStart, bLast, bComplete, { duplicates: bDuplicates, misrouted: 0, apiDelivered: bApi, cost: bCost });
  console.error(`[loadgen] broadcast: ${bReceived}/${bExpected} in ${broadcast.durationMs.toFixed(0)} ms`);
  await sleep(500);

  // Push phase.
  let pApi = 0;
  let nextUser = 0;
  const pMark = await costMark(config);
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
  const pCost = costSince(pMark, config);
  const push = summarize(pLat, pReceived, clients, pStart, pLast, pComplete, { duplicates: pDuplicates, misrouted: pMisrouted, apiDelivered: pApi, cost: pCost });
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

/**
 * Counts what reaches redis-server over MONITOR while open: commands from clients (each one round
 * trip) by name, apart from those a Lua script runs (`[0 lua]`), which cost no round trip.
 */
function redisMonitor(port: number): Promise<{ counts: () => { client: Record<string, number>; scripted: Record<string, number> }; close: () => void }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, HOST);
    const client: Record<string, number> = {};
    const scripted: Record<string, number> = {};
    let partial = '';
    let started = false;
    const timer = setTimeout(() => socket.destroy(new Error('MONITOR: no answer in 5 s')), 5_000);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write('MONITOR\r\n'));
    socket.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\r\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (!started && line === '+OK') {
          started = true;
          clearTimeout(timer);
          resolve({ counts: () => ({ client: { ...client }, scripted: { ...scripted } }), close: () => socket.destroy() });
          continue;
        }
        const match = /^\+\d+\.\d+ \[\d+ ([^\]]+)\] "([^"]+)"/.exec(line);
        if (!match) continue;
        const name = match[2]!.toLowerCase();
        const into = match[1] === 'lua' ? scripted : client;
        into[name] = (into[name] ?? 0) + 1;
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      if (!started) reject(error);
    });
  });
}

interface CostMark {
  nodeCpuMs: number;
  redisCpuMs: number;
  monitor?: Awaited<ReturnType<typeof redisMonitor>>;
}

async function costMark(config: LoadConfig): Promise<CostMark> {
  return {
    nodeCpuMs: config.nodePids.reduce((sum, pid) => sum + cpuMs(pid), 0),
    redisCpuMs: config.redis ? cpuMs(config.redis.pid) : 0,
    ...(config.redis && { monitor: await redisMonitor(config.redis.port) }),
  };
}

function costSince(before: CostMark, config: LoadConfig): PhaseCost {
  const counts = before.monitor?.counts() ?? { client: {}, scripted: {} };
  before.monitor?.close();
  return {
    nodeCpuMs: config.nodePids.reduce((sum, pid) => sum + cpuMs(pid), 0) - before.nodeCpuMs,
    redisCpuMs: (config.redis ? cpuMs(config.redis.pid) : 0) - before.redisCpuMs,
    redisCommands: counts.client,
    redisScriptCommands: counts.scripted,
  };
}

// ---------------------------------------------------------------- processes

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
    const nodePids = gateways.map((child) => child.pid!);
    const result = await runLoadgen({ ports, clients, broadcasts: BROADCASTS, secret, apiKey, nodePids, ...(redis && { redis: { port: redis.port, pid: redis.pid } }) });
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

/** CPU-seconds per 1,000 deliveries (nodes, redis-server) and Redis commands per publish, per phase. */
function costTable(results: ConfigResult[]): string {
  const head = ['config', 'phase', 'publishes', 'deliveries', 'node CPU-s/1k del', 'redis CPU-s/1k del', 'round trips/publish', 'client commands/publish'];
  const rows: string[][] = [];
  for (const r of results) {
    for (const [phase, result, publishes] of [['broadcast', r.broadcast, BROADCASTS], ['push', r.push, r.push.expected]] as const) {
      const { nodeCpuMs, redisCpuMs, redisCommands } = result.cost;
      const total = Object.values(redisCommands).reduce((sum, n) => sum + n, 0);
      rows.push([
        `${r.name} ${r.label}`,
        phase,
        k(publishes),
        k(result.received),
        f(nodeCpuMs / result.received, 3),
        r.redis ? f(redisCpuMs / result.received, 3) : '',
        r.redis ? f(total / publishes, 2) : '',
        Object.entries(redisCommands)
          .sort((a, b) => b[1] - a[1])
          .map(([name, n]) => `${name} ${f(n / publishes, 2)}`)
          .join(', '),
      ]);
    }
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((cell, i) => (i < 2 || i === 7 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join(' | ')} |`;
  return [line(head), `|${widths.map((w, i) => (i < 2 || i === 7 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...rows.map(line)].join('\n');
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
  process.stdout.write(`\nCost per phase (CPU from /proc utime+stime; Redis round trips = client commands seen by MONITOR, which itself costs redis-server CPU; script-inner commands excluded)\n\n${costTable(results)}\n`);
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


main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  },
);
