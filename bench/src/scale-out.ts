/**
 * 100,000 authenticated idle connections on one machine (issue 20): the built gateway CLI as K
 * processes sharing one redis-server, M load-generator processes, every connection authenticated
 * by a first-message JWT and then idle.
 *
 *   npm run bench:100k [-- --connections N] [-- --nodes K] [-- --loadgens M] [-- --broadcasts B]
 *
 * Why this shape: a process may hold at most 20,000 open files here (the hard limit, not raisable),
 * so neither one gateway nor one load generator can hold 100,000 sockets. Each node and each load
 * generator gets at most `PER_PROCESS` connections. The load generators connect straight to the
 * nodes, connection i to node i mod K, as an L4 balancer would: a proxy in front would need two
 * file descriptors per connection (HAProxy's maxconn 8,000 in deploy/haproxy.cfg is that limit),
 * i.e. 10+ proxy processes and twice the sockets on a 2-core box, measuring the proxy rather than
 * the gateway. Node's cluster module is not how the CLI runs. Load generator m binds its sockets
 * to 127.0.(m+2).1 to 127.0.(m+2).250 in turn, so no (source, destination) address pair comes near
 * the ephemeral port range (`net.ipv4.ip_local_port_range`); no sysctl is changed.
 *
 * Phases, each bounded: connect (all load generators at once, `CONNECT_CONCURRENCY` handshakes in
 * flight each, at most `CONNECT_TIMEOUT_MS`); idle hold (`HOLD_MS`: CPU left from /proc/stat, RSS of
 * every process from /proc); B broadcasts through `POST /api/broadcast` (alternating the node), one
 * after the other, each awaited until every connection has it or `BROADCAST_TIMEOUT_MS`: latency =
 * arrival hrtime - hrtime at send (one CLOCK_MONOTONIC for every process). The whole run ends
 * within `RUN_DEADLINE_MS`, every process it started killed by process group.
 */
import { type ChildProcess, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import { WebSocket } from 'ws';
import { cpuMs, freePorts, HOST, hr, launch, msSince, percentile, request, root, rssBytes, sleep, startNode, startRedis, stop } from './cli-nodes.js';

const RESULTS = path.join(root, 'bench/results');
/** Connections per gateway and per load generator: under the 20,000 open files with room for the rest. */
const PER_PROCESS = 15_000;
const CONNECT_CONCURRENCY = 200;
const CLIENT_TIMEOUT_MS = 30_000;
const CONNECT_TIMEOUT_MS = 300_000;
const HOLD_MS = 10_000;
const BROADCAST_TIMEOUT_MS = 60_000;
const RUN_DEADLINE_MS = 570_000;
const SOURCES_PER_LOADGEN = 250;

interface LoadgenConfig {
  index: number;
  ports: number[];
  /** Global index of this generator's first connection (its users are `u<first>`...). */
  first: number;
  count: number;
  secret: string;
}

/** Load generator → orchestrator. */
type LoadgenMessage =
  | { type: 'progress'; opened: number; failed: number }
  | { type: 'holding'; opened: number; failed: number; errors: Record<string, number>; firstSentNs: string; lastOpenNs: string }
  | { type: 'counts'; received: number[] }
  | { type: 'latencies'; ms: number[][] };

/** Orchestrator → load generator. */
type LoadgenCommand = { cmd: 'counts' } | { cmd: 'latencies' };

// ---------------------------------------------------------------- load generator (child process)

async function loadgen(config: LoadgenConfig): Promise<void> {
  const { index, ports, first, count, secret } = config;
  const send = (message: LoadgenMessage) => process.send?.(message);
  const key = new TextEncoder().encode(secret);
  const exp = Math.floor(Date.now() / 1000) + 30 * 60; // no reauth during the run
  const sockets: WebSocket[] = [];
  const received: number[] = [];
  const latencies: number[][] = [];
  const errors: Record<string, number> = {};
  let opened = 0;
  let failed = 0;
  let lastOpen = 0n;

  const onFrame = (raw: WebSocket.RawData): void => {
    const now = hr();
    const frame = JSON.parse(raw.toString()) as { type?: string; data?: { t?: unknown; i?: unknown } };
    if (frame.type !== 'message' || typeof frame.data?.t !== 'string' || typeof frame.data.i !== 'number') return;
    const i = frame.data.i;
    received[i] = (received[i] ?? 0) + 1;
    (latencies[i] ??= []).push(Number(now - BigInt(frame.data.t)) / 1e6);
  };

  const connect = async (n: number): Promise<void> => {
    const global = first + n;
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(`u${global}`).setIssuedAt().setExpirationTime(exp).sign(key);
    const port = ports[global % ports.length]!;
    const localAddress = `127.0.${index + 2}.${1 + (n % SOURCES_PER_LOADGEN)}`;
    await new Promise<void>((resolve) => {
      const ws = new WebSocket(`ws://${HOST}:${port}/ws`, 'authsocket.v1', { localAddress, perMessageDeflate: false });
      let settled = false;
      const fail = (reason: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        failed++;
        errors[reason] = (errors[reason] ?? 0) + 1;
        ws.terminate();
        resolve();
      };
      const timer = setTimeout(() => fail(`not authenticated in ${CLIENT_TIMEOUT_MS / 1000} s`), CLIENT_TIMEOUT_MS);
      ws.on('error', (error: NodeJS.ErrnoException) => fail(`socket error ${error.code ?? error.message}`));
      ws.on('unexpected-response', (_req, res) => fail(`upgrade answered ${res.statusCode}`));
      ws.on('close', (code) => {
        if (settled) errors[`closed ${code} after auth`] = (errors[`closed ${code} after auth`] ?? 0) + 1;
        else fail(`closed ${code} before auth_ok`);
      });
      ws.on('open', () => ws.send(JSON.stringify({ type: 'auth', token })));
      ws.once('message', (raw) => {
        const frame = JSON.parse(raw.toString()) as { type?: string; code?: string };
        if (frame.type !== 'auth_ok') return fail(`expected auth_ok, got ${frame.type}${frame.code ? ` ${frame.code}` : ''}`);
        settled = true;
        clearTimeout(timer);
        opened++;
        lastOpen = hr();
        sockets.push(ws);
        ws.on('message', onFrame);
        resolve();
      });
    });
  };

  // The orchestrator gone (even by kill -9): nothing to hold for.
  process.on('disconnect', () => process.exit(0));
  const progress = setInterval(() => send({ type: 'progress', opened, failed }), 2_000);
  const firstSent = hr();
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(CONNECT_CONCURRENCY, count) }, async () => {
      while (next < count && msSince(firstSent) < CONNECT_TIMEOUT_MS) await connect(next++);
    }),
  );
  clearInterval(progress);
  send({ type: 'holding', opened, failed, errors, firstSentNs: firstSent.toString(), lastOpenNs: lastOpen.toString() });

  process.on('message', (command: LoadgenCommand) => {
    if (command.cmd === 'counts') send({ type: 'counts', received: [...received].map((n) => n ?? 0) });
    else send({ type: 'latencies', ms: latencies.map((list) => list ?? []) });
  });
  // Held until the orchestrator kills this process (its deadline bounds the run).
}

// ---------------------------------------------------------------- orchestrator

interface Loadgen {
  child: ChildProcess;
  progress: { opened: number; failed: number };
  holding?: Extract<LoadgenMessage, { type: 'holding' }>;
  ask<T extends LoadgenMessage['type']>(command: LoadgenCommand, type: T): Promise<Extract<LoadgenMessage, { type: T }>>;
}

function startLoadgen(config: LoadgenConfig): Loadgen {
  const { child } = launch(process.execPath, ['--max-old-space-size=4096', fileURLToPath(import.meta.url), '--loadgen', JSON.stringify(config)], 'ipc');
  const handle: Loadgen = {
    child,
    progress: { opened: 0, failed: 0 },
    ask: (command, type) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`load generator ${config.index}: no ${type} in 30 s`)), 30_000);
        const listener = (message: LoadgenMessage) => {
          if (message.type !== type) return;
          clearTimeout(timer);
          child.off('message', listener);
          resolve(message as Extract<LoadgenMessage, { type: typeof type }>);
        };
        child.on('message', listener);
        child.send(command);
      }),
  };
  child.on('message', (message: LoadgenMessage) => {
    if (message.type === 'progress') handle.progress = message;
    if (message.type === 'holding') {
      handle.holding = message;
      handle.progress = message;
    }
  });
  return handle;
}

/** Idle and total jiffies of all CPUs, from the first line of /proc/stat. */
function cpuTimes(): { idle: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { idle: fields[3]! + (fields[4] ?? 0), total: fields.reduce((sum, n) => sum + n, 0) };
}

function sysctl(name: string): string {
  try {
    return readFileSync(`/proc/sys/${name.replaceAll('.', '/')}`, 'utf8').trim().replace(/\s+/g, ' ');
  } catch {
    return 'unreadable';
  }
}

function openFileLimit(pid: number | undefined): string {
  try {
    const line = readFileSync(`/proc/${pid ?? 'self'}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    return line?.split(/\s{2,}/).slice(1, 3).join('/') ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

const mib = (bytes: number) => bytes / 1024 / 1024;
const f = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '—');
const k = (value: number) => (Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '—');

function option(argv: string[], name: string, fallback: number): number {
  const at = argv.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(argv[at + 1]);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name}: a positive integer`);
  return value;
}

async function main(argv: string[]): Promise<number> {
  const loadIndex = argv.indexOf('--loadgen');
  if (loadIndex >= 0) {
    await loadgen(JSON.parse(argv[loadIndex + 1]!) as LoadgenConfig);
    return -1; // keep running: the orchestrator ends this process
  }
  const connections = option(argv, '--connections', 100_000);
  const nodes = option(argv, '--nodes', Math.ceil(connections / PER_PROCESS));
  const loadgens = option(argv, '--loadgens', Math.ceil(connections / PER_PROCESS));
  const broadcasts = option(argv, '--broadcasts', 5);
  if (loadgens > 250) throw new Error('--loadgens: at most 250 (one 127.0.x.0/24 each)');
  const started = hr();
  const deadline = setTimeout(() => {
    console.error(`bench:100k: run deadline of ${RUN_DEADLINE_MS / 1000} s reached; stopping every process`);
    process.exit(2);
  }, RUN_DEADLINE_MS);
  const system = {
    cpus: os.cpus().length,
    memTotalMiB: Math.round(mib(os.totalmem())),
    openFilesLimit: openFileLimit(undefined),
    ipLocalPortRange: sysctl('net.ipv4.ip_local_port_range'),
    somaxconn: sysctl('net.core.somaxconn'),
    fileMax: sysctl('fs.file-max'),
    loadavgBefore: os.loadavg(),
  };
  console.error(`bench:100k: ${connections} connections, ${nodes} gateway nodes + Redis, ${loadgens} load generators; ${JSON.stringify(system)}`);

  const secret = randomBytes(32).toString('hex');
  const apiKey = randomBytes(24).toString('hex');
  const redis = await startRedis();
  const ports = await freePorts(nodes);
  let gateways: ChildProcess[] = [];
  const generators: Loadgen[] = [];
  try {
    const nodeArgs = ['--upgrade-rate-limit', 'off', '--log-level', 'warn'];
    gateways = await Promise.all(ports.map((port) => startNode(port, secret, apiKey, redis.url, nodeArgs)));
    const sumRss = (pids: (number | undefined)[]) => pids.reduce<number>((sum, pid) => sum + rssBytes(pid), 0);
    const sumCpu = (pids: (number | undefined)[]) => pids.reduce<number>((sum, pid) => sum + cpuMs(pid), 0);
    const nodePids = gateways.map((child) => child.pid);
    const baseRss = { nodes: sumRss(nodePids), redis: rssBytes(redis.pid) };
    console.error(`[100k] nodes on ${ports.join(', ')} (open files ${openFileLimit(nodePids[0])} each), Redis ${redis.url}; ${f(mib(baseRss.nodes))} MiB RSS before connections`);

    // Connect.
    const share = Math.ceil(connections / loadgens);
    for (let m = 0; m < loadgens; m++) {
      const first = m * share;
      const count = Math.min(share, connections - first);
      if (count > 0) generators.push(startLoadgen({ index: m, ports, first, count, secret }));
    }
    const cpuConnect = { nodes: sumCpu(nodePids), redis: cpuMs(redis.pid) };
    let lastReport = hr();
    while (generators.some((g) => !g.holding)) {
      if (generators.some((g) => g.child.exitCode !== null || g.child.signalCode !== null)) throw new Error('a load generator exited while connecting');
      if (msSince(started) > CONNECT_TIMEOUT_MS + 60_000) throw new Error('connect phase overran');
      if (msSince(lastReport) > 10_000) {
        lastReport = hr();
        const opened = generators.reduce((sum, g) => sum + g.progress.opened, 0);
        const failed = generators.reduce((sum, g) => sum + g.progress.failed, 0);
        console.error(`[100k] ${k(opened)} open, ${k(failed)} failed, ${f(msSince(started) / 1000)} s; node RSS ${f(mib(sumRss(nodePids)))} MiB`);
      }
      await sleep(200);
    }
    const holding = generators.map((g) => g.holding!);
    const opened = holding.reduce((sum, h) => sum + h.opened, 0);
    const failed = holding.reduce((sum, h) => sum + h.failed, 0);
    const errors: Record<string, number> = {};
    for (const h of holding) for (const [reason, n] of Object.entries(h.errors)) errors[reason] = (errors[reason] ?? 0) + n;
    const firstSent = holding.reduce((min, h) => (BigInt(h.firstSentNs) < min ? BigInt(h.firstSentNs) : min), BigInt(holding[0]!.firstSentNs));
    const lastOpen = holding.reduce((max, h) => (BigInt(h.lastOpenNs) > max ? BigInt(h.lastOpenNs) : max), 0n);
    const connectS = msSince(firstSent, lastOpen) / 1000;
    const connectCpu = {
      nodesS: (sumCpu(nodePids) - cpuConnect.nodes) / 1000,
      redisS: (cpuMs(redis.pid) - cpuConnect.redis) / 1000,
    };
    console.error(`[100k] connected: ${k(opened)} authenticated, ${k(failed)} failed ${JSON.stringify(errors)} in ${f(connectS)} s`);

    // Idle hold.
    await sleep(2_000);
    const idleCpu0 = cpuTimes();
    const idleNode0 = sumCpu(nodePids);
    const loadgenPids = generators.map((g) => g.child.pid);
    const idleLoadgen0 = sumCpu(loadgenPids);
    await sleep(HOLD_MS);
    const idleCpu1 = cpuTimes();
    const idleNodeCpuMs = sumCpu(nodePids) - idleNode0;
    const idleLoadgenCpuMs = sumCpu(loadgenPids) - idleLoadgen0;
    const cpuLeftPct = (100 * (idleCpu1.idle - idleCpu0.idle)) / (idleCpu1.total - idleCpu0.total);
    const rss = {
      nodes: sumRss(nodePids),
      perNode: nodePids.map((pid) => rssBytes(pid)),
      redis: rssBytes(redis.pid),
      loadgens: sumRss(generators.map((g) => g.child.pid)),
    };
    const alive = gateways.filter((child) => child.exitCode === null && child.signalCode === null).length;
    console.error(`[100k] idle: CPU left ${f(cpuLeftPct)} %, node RSS ${f(mib(rss.nodes))} MiB (${f((rss.nodes - baseRss.nodes) / opened / 1024, 2)} KiB/connection over the baseline), ${alive}/${nodes} nodes alive`);

    // Broadcasts.
    const results: { i: number; received: number; completeMs: number; nodeCpuMs: number; redisCpuMs: number }[] = [];
    for (let i = 0; i < broadcasts; i++) {
      const node0 = sumCpu(nodePids);
      const redis0 = cpuMs(redis.pid);
      const sent = hr();
      const answer = await request(ports[i % ports.length]!, 'POST', '/api/broadcast', { data: { t: sent.toString(), i } }, apiKey);
      if (answer.status !== 200) throw new Error(`broadcast ${i} answered ${answer.status}: ${JSON.stringify(answer.json)}`);
      let received = 0;
      while (msSince(sent) < BROADCAST_TIMEOUT_MS) {
        const counts = await Promise.all(generators.map((g) => g.ask({ cmd: 'counts' }, 'counts')));
        received = counts.reduce((sum, c) => sum + (c.received[i] ?? 0), 0);
        if (received >= opened) break;
        await sleep(100);
      }
      const completeMs = msSince(sent);
      await sleep(500); // settle: the CPU of the fan-out's tail
      results.push({ i, received, completeMs, nodeCpuMs: sumCpu(nodePids) - node0, redisCpuMs: cpuMs(redis.pid) - redis0 });
      console.error(`[100k] broadcast ${i}: ${k(received)}/${k(opened)} within ${f(completeMs, 0)} ms`);
    }
    const latencies = await Promise.all(generators.map((g) => g.ask({ cmd: 'latencies' }, 'latencies')));
    const all = new Float64Array(latencies.flatMap((l) => l.ms.flat())).sort();
    const perBroadcast = results.map((r) => {
      const sorted = new Float64Array(latencies.flatMap((l) => l.ms[r.i] ?? [])).sort();
      return { ...r, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), maxMs: sorted[sorted.length - 1] ?? Number.NaN };
    });

    const wallS = msSince(started) / 1000;
    const report = {
      date: new Date().toISOString(),
      command: `npm run bench:100k${argv.length ? ` -- ${argv.join(' ')}` : ''}`,
      machine: { ...system, node: process.version, redis: execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).trim(), loadavgAfter: os.loadavg() },
      asked: connections,
      nodes,
      loadgens: generators.length,
      opened,
      failed,
      errors,
      connect: { seconds: connectS, perSecond: opened / connectS, nodeCpuS: connectCpu.nodesS, redisCpuS: connectCpu.redisS },
      idle: { cpuLeftPct, nodeCpuMsPerSecond: idleNodeCpuMs / (HOLD_MS / 1000), loadgenCpuMsPerSecond: idleLoadgenCpuMs / (HOLD_MS / 1000) },
      rss: {
        nodesMiB: mib(rss.nodes),
        perNodeMiB: rss.perNode.map(mib),
        baselineNodesMiB: mib(baseRss.nodes),
        perConnectionKiB: rss.nodes / opened / 1024,
        perConnectionOverBaselineKiB: (rss.nodes - baseRss.nodes) / opened / 1024,
        redisMiB: mib(rss.redis),
        redisPerConnectionKiB: (rss.redis - baseRss.redis) / opened / 1024,
        loadgensMiB: mib(rss.loadgens),
      },
      broadcasts: perBroadcast,
      broadcast: { p50Ms: percentile(all, 50), p99Ms: percentile(all, 99), maxMs: all[all.length - 1] ?? Number.NaN },
      wallSeconds: wallS,
    };
    mkdirSync(RESULTS, { recursive: true });
    writeFileSync(path.join(RESULTS, `scale-out-${connections}.json`), `${JSON.stringify(report, null, 2)}\n`);

    const rows: [string, string][] = [
      ['connections asked / authenticated / failed', `${k(connections)} / ${k(opened)} / ${k(failed)}`],
      ['processes', `${nodes} gateway nodes + 1 redis-server + ${generators.length} load generators`],
      ['connect time, rate', `${f(connectS)} s, ${k(opened / connectS)} connections/s`],
      ['CPU to connect (nodes, redis)', `${f(connectCpu.nodesS)} s, ${f(connectCpu.redisS)} s`],
      ['gateway RSS total (before connections)', `${f(mib(rss.nodes), 0)} MiB (${f(mib(baseRss.nodes), 0)} MiB)`],
      ['gateway RSS per connection (over the baseline)', `${f(report.rss.perConnectionKiB, 2)} KiB (${f(report.rss.perConnectionOverBaselineKiB, 2)} KiB)`],
      ['redis-server RSS (per connection)', `${f(mib(rss.redis), 0)} MiB (${f(report.rss.redisPerConnectionKiB, 2)} KiB)`],
      ['load generators RSS', `${f(mib(rss.loadgens), 0)} MiB`],
      ['CPU left, idle hold (/proc/stat, 2 cores)', `${f(cpuLeftPct)} % (gateways ${f(idleNodeCpuMs / (HOLD_MS / 1000), 0)} ms CPU/s, load generators ${f(idleLoadgenCpuMs / (HOLD_MS / 1000), 0)} ms CPU/s)`],
      ['broadcast-to-all p50 / p99 / max', `${f(report.broadcast.p50Ms)} / ${f(report.broadcast.p99Ms)} / ${f(report.broadcast.maxMs)} ms`],
      ['broadcast complete (each)', perBroadcast.map((b) => `${f(b.completeMs, 0)} ms`).join(', ')],
      ['CPU per broadcast (nodes, redis)', perBroadcast.map((b) => `${f(b.nodeCpuMs / 1000, 2)}+${f(b.redisCpuMs / 1000, 2)} s`).join(', ')],
      ['deliveries (each broadcast)', perBroadcast.map((b) => k(b.received)).join(', ')],
    ];
    const width = Math.max(...rows.map(([label]) => label.length));
    process.stdout.write(`\n100k: ${k(connections)} connections, ${os.cpus().length} CPUs, load ${system.loadavgBefore.map((l) => l.toFixed(2)).join(' ')} -> ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}\n\n`);
    process.stdout.write(`| ${'measure'.padEnd(width)} | value |\n|${'-'.repeat(width + 2)}|-------|\n`);
    for (const [label, value] of rows) process.stdout.write(`| ${label.padEnd(width)} | ${value} |\n`);
    process.stdout.write(`\nerrors: ${JSON.stringify(errors)}; wall ${f(wallS)} s\n`);
    const lost = perBroadcast.some((b) => b.received < opened);
    return opened === connections && !lost && alive === nodes ? 0 : 1;
  } finally {
    clearTimeout(deadline);
    await Promise.all(generators.map((g) => stop(g.child)));
    await Promise.all(gateways.map((child) => stop(child)));
    await redis.stop();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  },
);
