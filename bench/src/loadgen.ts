/**
 * The load generator: one process per run, configured by BENCH_LOAD (JSON), driving one target
 * server on 127.0.0.1 and reporting flat metrics over IPC. Tokens are minted before any clock
 * starts; every latency is the shared monotonic clock read here minus the stamp the server wrote.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { Pool } from 'undici';
import { BenchClient, control, fetchTicket } from './clients.js';
import {
  type AppData,
  behaviour,
  dialectOf,
  distribution,
  GATEWAY_API_KEY,
  HOST,
  type LoadConfig,
  type Metrics,
  mintToken,
  nowUs,
  type ServerStats,
  sleep,
  workersOf,
  type WorkerStats,
} from './common.js';

const config = JSON.parse(process.env.BENCH_LOAD ?? '{}') as LoadConfig;
const { target, port, controlPort, params } = config;
const dialect = dialectOf(target);
const HOUR_MS = 3_600_000;
/** Clients opened at once while a scenario sets up its connections. */
const SETUP_CONCURRENCY = 200;
const SIZE = 100;

const stats = (gc = false) => control<ServerStats>(controlPort, 'stats', gc ? { gc: 1 } : {});

/**
 * Source address for the i-th connection: the first 25,000 let the kernel pick (connect-time
 * autobind, fast); beyond, 127.0.0.2, .3, ... each add ~28k ports (an explicit bind is slower).
 */
function localAddress(i: number): string | undefined {
  const PER_ADDRESS = 25_000;
  if (i < PER_ADDRESS) return undefined;
  return `127.0.0.${1 + Math.floor(i / PER_ADDRESS)}`;
}

interface Opened {
  clients: BenchClient[];
  /** µs from the first byte sent (ticket request or TCP connect) to `auth_ok`, per connection. */
  latencies: number[];
  /** µs spent on `POST /auth/ticket`, per connection (ticket mode). */
  ticketLatencies: number[];
  elapsedUs: number;
}

/** Opens `count` authenticated connections, `concurrency` at a time, as users `first..first+count-1`. */
async function openMany(
  count: number,
  concurrency: number,
  tokenFor: (user: number) => string,
  options: { ticket?: boolean; first?: number; offset?: number } = {},
): Promise<Opened> {
  const first = options.first ?? 0;
  const clients = new Array<BenchClient>(count);
  const latencies: number[] = [];
  const ticketLatencies: number[] = [];
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  let next = 0;
  const started = nowUs();
  const worker = async () => {
    while (next < count) {
      const index = next++;
      const user = first + index;
      const token = tokenFor(user);
      const t0 = nowUs();
      let ticket: string | undefined;
      if (options.ticket) {
        ticket = await fetchTicket(agent, port, token);
        ticketLatencies.push(nowUs() - t0);
      }
      const address = localAddress((options.offset ?? 0) + index);
      const client = new BenchClient(dialect, port, user, token, {
        ...(ticket === undefined ? {} : { ticket }),
        ...(address === undefined ? {} : { localAddress: address }),
      });
      clients[index] = client;
      const at = await client.ready;
      latencies.push(at - t0);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  const elapsedUs = nowUs() - started;
  agent.destroy();
  return { clients, latencies, ticketLatencies, elapsedUs };
}

const longLived = (user: number) => mintToken(`u${user}`, Date.now() + HOUR_MS);
const ms = (us: number) => us / 1000;

function cpuPer(before: ServerStats, after: ServerStats, operations: number): number {
  return (after.cpuUs - before.cpuUs) / operations;
}

/** The kernel's part of `cpuPer`: what the server's syscalls (socket writes above all) cost. */
function systemPer(before: ServerStats, after: ServerStats, operations: number): number {
  return (after.systemUs - before.systemUs) / operations;
}

/** 1. Connect + authenticate: connections/s, latency from first byte to `auth_ok`, server CPU each. */
async function connect(): Promise<Metrics> {
  const n = params.connections ?? 3_000;
  const warmup = params.warmup ?? 0;
  const ticket = behaviour(target) === 'authsocket-ticket';
  const tokens = Array.from({ length: warmup + n }, (_, i) => longLived(i));
  // Warm-up connections (JIT, pools) stay open and are not counted.
  const warm = await openMany(warmup, params.concurrency ?? 100, (i) => tokens[i] as string, { ticket });
  const before = await stats();
  const opened = await openMany(n, params.concurrency ?? 100, (i) => tokens[i] as string, { ticket, first: warmup });
  const after = await stats();
  const latency = distribution(opened.latencies);
  const metrics: Metrics = {
    'rate_conn/s': n / (opened.elapsedUs / 1e6),
    'p50_ms': ms(latency.p50),
    'p99_ms': ms(latency.p99),
    'cpu_us/conn': cpuPer(before, after, n),
    'sys_us/conn': systemPer(before, after, n),
  };
  if (opened.ticketLatencies.length > 0) {
    const ticketLatency = distribution(opened.ticketLatencies);
    metrics['ticket_p50_ms'] = ms(ticketLatency.p50);
    metrics['ticket_p99_ms'] = ms(ticketLatency.p99);
  }
  for (const client of [...warm.clients, ...opened.clients]) client.close();
  return metrics;
}

/** 2. Idle memory: server RSS (and heap) per authenticated idle connection, after a full GC. */
async function idle(): Promise<Metrics> {
  const n = params.connections ?? 10_000;
  const warmup = params.warmup ?? 0;
  const warm = await openMany(warmup, SETUP_CONCURRENCY, longLived);
  const before = await stats(true);
  const opened = await openMany(n, SETUP_CONCURRENCY, longLived, { first: warmup });
  await sleep(params.settleMs ?? 2_000);
  // CPU read before the forced GC, which would otherwise be counted as the connections' cost.
  const cpuAfter = await stats();
  const after = await stats(true);
  if (after.connections < warmup + n) throw new Error(`server reports ${after.connections} of ${warmup + n} connections`);
  const metrics: Metrics = {
    'rss_KiB/conn': (after.rss - before.rss) / n / 1024,
    'heap_KiB/conn': (after.heapUsed - before.heapUsed) / n / 1024,
    'heap_committed_KiB/conn': (after.heapTotal - before.heapTotal) / n / 1024,
    'external_KiB/conn': (after.external - before.external) / n / 1024,
    'rss_MiB': after.rss / 1048576,
    'cpu_us/conn': cpuPer(before, cpuAfter, n),
    'setup_conn/s': n / (opened.elapsedUs / 1e6),
  };
  if (params.snapshot === 1) await control(controlPort, 'heap-snapshot');
  for (const client of [...warm.clients, ...opened.clients]) client.close();
  return metrics;
}

/** Waits until `done()` or `timeoutMs`; true when done. */
async function until(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > end) return false;
    await sleep(2);
  }
  return true;
}

/** 3. Broadcast fan-out: every delivery's latency from the server's send call to arrival. */
async function broadcast(): Promise<Metrics> {
  const n = params.clients ?? 5_000;
  const opened = await openMany(n, SETUP_CONCURRENCY, longLived);
  return fanOut(opened.clients, async (seq) => {
    const { elapsedUs } = await control<{ elapsedUs: number }>(controlPort, 'broadcast', { seq, size: SIZE });
    return elapsedUs;
  });
}

/** 3b. Topic fan-out: every client subscribed to one topic, each publish to all of them. */
async function topic(): Promise<Metrics> {
  const n = params.clients ?? 5_000;
  const opened = await openMany(n, SETUP_CONCURRENCY, longLived);
  let acks = 0;
  for (const client of opened.clients) {
    client.onAck = () => acks++;
    client.subscribe('room0', 's');
  }
  if (!(await until(() => acks >= n, 10_000))) throw new Error(`${acks} of ${n} subscriptions acknowledged`);
  return fanOut(opened.clients, async (seq) => {
    const { elapsedUs } = await control<{ elapsedUs: number }>(controlPort, 'publish-one', { seq, size: SIZE });
    return elapsedUs;
  });
}

/**
 * One frame to every client, `broadcasts` times, `gapMs` apart: delivery latency (server stamp to
 * arrival), the server's own fan-out time per frame and its CPU per delivery.
 */
async function fanOut(clients: BenchClient[], send: (seq: number) => Promise<number>): Promise<Metrics> {
  const n = clients.length;
  const count = params.broadcasts ?? 20;
  const latencies: number[] = [];
  let received = 0;
  for (const client of clients) {
    client.onData = (data, at) => {
      latencies.push(at - data.t);
      received++;
    };
  }
  await sleep(500);
  const before = await stats();
  let lost = 0;
  const fanouts: number[] = [];
  for (let seq = 1; seq <= count; seq++) {
    const expected = received + n;
    fanouts.push(await send(seq));
    if (!(await until(() => received >= expected, 10_000))) lost += expected - received;
    await sleep(params.gapMs ?? 50);
  }
  const after = await stats();
  const latency = distribution(latencies);
  for (const client of clients) client.close();
  return {
    'p50_ms': ms(latency.p50),
    'p99_ms': ms(latency.p99),
    'max_ms': ms(latency.max),
    'server_fanout_ms': ms(distribution(fanouts).p50),
    'cpu_us/delivery': cpuPer(before, after, n * count),
    'sys_us/delivery': systemPer(before, after, n * count),
    lost,
  };
}

/** 4. Push to user: one message to each of N users per round; throughput and latency. */
async function push(): Promise<Metrics> {
  const n = params.users ?? 5_000;
  const rounds = params.rounds ?? 5;
  const opened = await openMany(n, SETUP_CONCURRENCY, longLived);
  const latencies: number[] = [];
  let received = 0;
  let last = 0;
  for (const client of opened.clients) {
    client.onData = (data, at) => {
      latencies.push(at - data.t);
      received++;
      last = at;
    };
  }
  await sleep(500);
  const before = await stats();
  const throughputs: number[] = [];
  const serverRates: number[] = [];
  let lost = 0;
  for (let round = 0; round < rounds; round++) {
    const expected = received + n;
    const start = nowUs();
    const { elapsedUs } = await control<{ elapsedUs: number }>(controlPort, 'push', { users: n, perUser: 1, size: SIZE });
    serverRates.push(n / (elapsedUs / 1e6));
    if (!(await until(() => received >= expected, 10_000))) lost += expected - received;
    throughputs.push(n / ((last - start) / 1e6));
    await sleep(100);
  }
  const after = await stats();
  const latency = distribution(latencies);
  for (const client of opened.clients) client.close();
  throughputs.sort((a, b) => a - b);
  return {
    'push/s': throughputs[throughputs.length >> 1] as number,
    'server_push/s': distribution(serverRates).p50,
    'p50_ms': ms(latency.p50),
    'p99_ms': ms(latency.p99),
    'max_ms': ms(latency.max),
    'cpu_us/push': cpuPer(before, after, n * rounds),
    'sys_us/push': systemPer(before, after, n * rounds),
    lost,
  };
}

/** 5. Echo: closed-loop round trips from every client for a fixed time. */
async function echo(): Promise<Metrics> {
  const n = params.clients ?? 100;
  const durationMs = params.durationMs ?? 5_000;
  const tokens = Array.from({ length: n }, (_, i) => longLived(i));
  const opened = await openMany(n, SETUP_CONCURRENCY, (i) => tokens[i] as string);
  const perMessageToken = behaviour(target) === 'authsocket-pma';
  const rtts: number[] = [];
  let end = Number.POSITIVE_INFINITY;
  let inFlight = 0;
  const send = (client: BenchClient, seq: number) => {
    inFlight++;
    client.sendData({ s: seq, t: nowUs(), p: 'x'.repeat(60) }, perMessageToken ? tokens[client.user] : undefined);
  };
  for (const client of opened.clients) {
    client.onData = (data: AppData, at) => {
      inFlight--;
      rtts.push(at - data.t);
      if (at < end) send(client, data.s + 1);
    };
  }
  // Warm-up: a few round trips per client, not counted (JIT, caches).
  for (const client of opened.clients) send(client, 0);
  await sleep(Math.min(500, durationMs / 4));
  rtts.length = 0;
  const before = await stats();
  const start = nowUs();
  const counted = rtts.length;
  end = start + durationMs * 1000;
  await sleep(durationMs);
  const total = rtts.length - counted;
  const after = await stats();
  await until(() => inFlight === 0, 2_000);
  const rtt = distribution(rtts);
  for (const client of opened.clients) client.close();
  return {
    'rt/s': total / (durationMs / 1000),
    'p50_ms': ms(rtt.p50),
    'p99_ms': ms(rtt.p99),
    'cpu_us/rt': cpuPer(before, after, total),
  };
}

/**
 * 6. Expiry churn: every token expires within the same `spreadMs` window and is refreshed in band
 * (`auth` on the live socket) while the server keeps pushing to every user once a second. Counts
 * what each user was sent against what arrived, in order, exactly once.
 */
async function churn(): Promise<Metrics> {
  const n = params.users ?? 5_000;
  const leadMs = params.leadMs ?? 12_000;
  const spreadMs = params.spreadMs ?? 10_000;
  const lateFraction = params.lateFraction ?? 0.2;
  const warnMs = params.warnMs ?? 2_000;
  const t0 = Date.now();
  // JWT `exp` is in whole seconds: the expiries land on the seconds of [t0+lead, t0+lead+spread).
  const expiring = Array.from({ length: n }, (_, i) => mintToken(`u${i}`, t0 + leadMs + (i / n) * spreadMs, t0));
  const fresh = Array.from({ length: n }, (_, i) => mintToken(`u${i}`, t0 + HOUR_MS, t0));
  const opened = await openMany(n, SETUP_CONCURRENCY, (i) => expiring[i] as string);
  const lastSeq = new Array<number>(n).fill(0);
  let outOfOrder = 0;
  const latencies: number[] = [];
  const stormLatencies: number[] = [];
  const heldLatencies: number[] = [];
  const reauthLatencies: number[] = [];
  const stormStart = nowUs() + (t0 + leadMs - warnMs - Date.now()) * 1000;
  const stormEnd = stormStart + (spreadMs + warnMs + 2_000) * 1000;
  let refreshed = 0;
  for (const client of opened.clients) {
    const user = client.user;
    // Under authsocket a share of clients ignores the early warning and refreshes only once
    // expired, so their deliveries are held and flushed; the other servers only warn.
    const late = dialect === 'authsocket' && user % Math.round(1 / lateFraction) === 0;
    let asked = 0;
    client.onReauth = (reason) => {
      if (late && reason !== 'expired') return;
      if (asked !== 0) return;
      asked = nowUs();
      client.sendAuth(fresh[user] as string);
    };
    client.onReauthOk = () => {
      refreshed++;
      if (asked !== 0) reauthLatencies.push(nowUs() - asked);
    };
    client.onData = (data, at) => {
      if (data.s !== lastSeq[user]! + 1) outOfOrder++;
      lastSeq[user] = data.s;
      const latency = at - data.t;
      // A late refresher's messages wait, held, for its reauth: reported apart, not as storm latency.
      if (late) heldLatencies.push(latency);
      else latencies.push(latency);
      if (!late && at >= stormStart && at <= stormEnd) stormLatencies.push(latency);
    };
  }
  const pushForMs = t0 + leadMs + spreadMs + 2_000 - Date.now();
  await control(controlPort, 'churn-start', { users: n, tickMs: 100, durationMs: pushForMs, size: SIZE });
  // CPU of the storm: from the first warning to two seconds after the last expiry.
  await sleep(Math.max(0, (stormStart - nowUs()) / 1000));
  const before = await stats();
  await sleep(Math.max(0, (stormEnd - nowUs()) / 1000));
  const after = await stats();
  await sleep(Math.max(0, t0 + leadMs + spreadMs + 2_500 - Date.now()));
  const result = await control<{ sent: number[]; undelivered: number; reauths: number }>(controlPort, 'churn-result');
  const received = (): number => lastSeq.reduce((sum, seq) => sum + seq, 0);
  const sentTotal = result.sent.reduce((sum, count) => sum + count, 0);
  await until(() => received() >= sentTotal, 3_000);
  let lost = 0;
  result.sent.forEach((count, user) => {
    lost += Math.max(0, count - (lastSeq[user] as number));
  });
  const closed = opened.clients.filter((client) => client.closedWith !== undefined).length;
  const all = distribution(latencies);
  const storm = distribution(stormLatencies);
  const reauth = distribution(reauthLatencies);
  for (const client of opened.clients) client.close();
  const metrics: Metrics = {
    sent: sentTotal,
    lost,
    out_of_order: outOfOrder,
    closed,
    refreshed,
    'storm_p50_ms': ms(storm.p50),
    'storm_p99_ms': ms(storm.p99),
    'storm_max_ms': ms(storm.max),
    'all_p99_ms': ms(all.p99),
    'reauth_p50_ms': ms(reauth.p50),
    'reauth_p99_ms': ms(reauth.p99),
    'storm_cpu_%': ((after.cpuUs - before.cpuUs) / (stormEnd - stormStart)) * 100,
    'cpu_us/reauth': cpuPer(before, after, Math.max(1, refreshed)),
  };
  if (heldLatencies.length > 0) {
    const held = distribution(heldLatencies);
    metrics['late_p50_ms'] = ms(held.p50);
    metrics['late_max_ms'] = ms(held.max);
  }
  return metrics;
}

/**
 * 7. The cost of history (authsocket, default history vs `history: false`): push throughput
 * (`perUser` messages to each of N users) and publish throughput (topics with N/topics subscribers).
 */
async function history(): Promise<Metrics> {
  const n = params.users ?? 1_000;
  const perUser = params.perUser ?? 20;
  const topics = params.topics ?? 10;
  const publishes = params.publishes ?? 2_000;
  const opened = await openMany(n, SETUP_CONCURRENCY, longLived);
  let acks = 0;
  for (const client of opened.clients) {
    client.onAck = () => acks++;
    client.subscribe(`room${client.user % topics}`, 's');
  }
  await until(() => acks >= n, 10_000);
  let received = 0;
  let last = 0;
  for (const client of opened.clients) {
    client.onData = (_data, at) => {
      received++;
      last = at;
    };
  }
  await sleep(300);
  // Push: N × perUser sendToUser calls.
  let before = await stats();
  let start = nowUs();
  let expected = n * perUser;
  await control(controlPort, 'push', { users: n, perUser, size: SIZE });
  const pushLost = (await until(() => received >= expected, 20_000)) ? 0 : expected - received;
  const pushRate = expected / ((last - start) / 1e6);
  let after = await stats();
  const pushCpu = cpuPer(before, after, expected);
  await sleep(200);
  // Publish: each publish reaches n / topics subscribers.
  received = 0;
  before = await stats();
  start = nowUs();
  expected = publishes * (n / topics);
  await control(controlPort, 'publish', { topics, count: publishes, size: SIZE });
  const publishLost = (await until(() => received >= expected, 20_000)) ? 0 : expected - received;
  const publishRate = publishes / ((last - start) / 1e6);
  after = await stats();
  const publishCpu = cpuPer(before, after, publishes);
  for (const client of opened.clients) client.close();
  return {
    'push/s': pushRate,
    'cpu_us/push': pushCpu,
    'publish/s': publishRate,
    'cpu_us/publish': publishCpu,
    'rss_MiB': after.rss / 1048576,
    lost: pushLost + publishLost,
  };
}

/**
 * 8. RPC round trips: every connection sends an rpc, waits for its answer, sends the next, for a
 * fixed time. Latency is request sent to answer arrived, on the generator's clock. CPU per rpc is
 * the server's, plus (`authsocket-proxy`) the backend process's, and both summed as `total`.
 * `errors` counts error frames, answers with a wrong id or payload, requests unanswered 2 s after the
 * end and connections that closed: anything but 0 is a failure.
 */
async function rpc(): Promise<Metrics> {
  const n = params.connections ?? 200;
  const durationMs = params.durationMs ?? 5_000;
  const opened = await openMany(n, SETUP_CONCURRENCY, longLived);
  const backendPort = config.backendControlPort;
  const backendStats = async () =>
    backendPort === undefined ? undefined : control<ServerStats & { sockets: number }>(backendPort, 'stats');
  const rtts: number[] = [];
  const ids = new Array<number>(n).fill(0);
  const sentAt = new Array<number>(n).fill(0);
  let end = Number.POSITIVE_INFINITY;
  let inFlight = 0;
  let errors = 0;
  const pad = 'x'.repeat(60);
  const send = (client: BenchClient, index: number) => {
    const id = ++ids[index]!;
    inFlight++;
    sentAt[index] = nowUs();
    client.sendRpc(id, 'echo', { s: id, u: index, p: pad });
  };
  opened.clients.forEach((client, index) => {
    // An answer to anything but the request in flight is an error (and leaves that one unanswered).
    const answered = (id: string, at: number) => {
      if (id !== String(ids[index])) return void errors++;
      inFlight--;
      rtts.push(at - (sentAt[index] as number));
      if (at < end) send(client, index);
    };
    client.onResult = (id, data, at) => {
      const echo = (data as { echo?: { s?: unknown; u?: unknown } } | null)?.echo;
      if (echo?.s !== ids[index] || echo?.u !== index) errors++;
      answered(id, at);
    };
    client.onError = (id, _code, at) => {
      errors++;
      if (id !== undefined) answered(id, at);
    };
  });
  // Warm-up, not counted: the same number of rpcs for every target (JIT, caches, the proxy's
  // pool), however long that takes it, and at least 200 ms.
  opened.clients.forEach((client, index) => send(client, index));
  await sleep(200);
  await until(() => rtts.length >= (params.warmup ?? 5_000), 10_000);
  const [before, backendBefore] = await Promise.all([stats(), backendStats()]);
  const counted = rtts.length;
  const start = nowUs();
  end = start + durationMs * 1000;
  await sleep(durationMs);
  const total = rtts.length - counted;
  const elapsedS = (nowUs() - start) / 1e6;
  const [after, backendAfter] = await Promise.all([stats(), backendStats()]);
  const drained = await until(() => inFlight === 0, 2_000);
  const closed = opened.clients.filter((client) => client.closedWith !== undefined).length;
  if (!drained) errors += inFlight;
  errors += closed;
  // Only the measured window's latencies.
  const rtt = distribution(rtts.slice(counted, counted + total));
  for (const client of opened.clients) client.close();
  const serverCpu = cpuPer(before, after, total);
  const backendCpu = backendBefore && backendAfter ? cpuPer(backendBefore, backendAfter, total) : 0;
  const metrics: Metrics = {
    'rpc/s': total / elapsedS,
    'p50_ms': ms(rtt.p50),
    'p99_ms': ms(rtt.p99),
    'cpu_us/rpc': serverCpu,
  };
  if (backendAfter) {
    metrics['backend_cpu_us/rpc'] = backendCpu;
    // Sockets the proxy had opened to the backend by the end: its keep-alive pool, not one per rpc.
    metrics['backend_sockets'] = backendAfter.sockets;
  }
  metrics['total_cpu_us/rpc'] = serverCpu + backendCpu;
  metrics.errors = errors;
  return metrics;
}

/** Clock ticks per second of `/proc/<pid>/stat` times (almost always 100). */
function clockTicks(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

/** CPU (user + system) of another process on this machine, in µs, from `/proc/<pid>/stat`: 1/CLK_TCK resolution. */
function processCpuUs(pid: number, ticks: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / ticks) * 1e6;
}

/**
 * 9. The queue path, end to end: every connection sends a `message` (with an id, so it is acked),
 * waits for both its ack and its reply frame `{echo: data}`, then sends the next, for a fixed time.
 * `queue-*`: the ack means the entry is committed to the Redis Stream (`ack_p50_ms`, durably queued);
 * the reply comes from a worker process through the Redis broker. In process (`authsocket`,
 * `authsocket-redis`) the ack goes out when `onMessage` returns. Latencies on the generator's clock
 * from the send. CPU per message: the gateway's, the workers' (summed), redis-server's (from /proc,
 * 10 ms ticks), and their total. `errors` counts error frames, acks or replies for anything but the
 * message in flight or with a wrong payload, a queue ack without its entry id, messages unanswered
 * 2 s after the end, closed connections and the workers' failed or dead-lettered entries.
 */
async function queue(): Promise<Metrics> {
  const n = params.connections ?? 100;
  const durationMs = params.durationMs ?? 5_000;
  const queued = workersOf(target) > 0;
  const opened = await openMany(n, SETUP_CONCURRENCY, longLived);
  const workerPorts = config.workerControlPorts ?? [];
  const redisPid = config.redisPid;
  const ticks = clockTicks();
  const workerStats = () => Promise.all(workerPorts.map((workerPort) => control<WorkerStats>(workerPort, 'stats')));
  const redisCpu = () => (redisPid === undefined ? undefined : processCpuUs(redisPid, ticks));
  const rtts: number[] = [];
  const ackLatencies: number[] = [];
  const ids = new Array<number>(n).fill(0);
  const sentAt = new Array<number>(n).fill(0);
  const acked = new Array<number>(n).fill(0);
  const replied = new Array<number>(n).fill(0);
  let end = Number.POSITIVE_INFINITY;
  let inFlight = 0;
  let errors = 0;
  const pad = 'x'.repeat(60);
  const send = (client: BenchClient, index: number) => {
    const id = ++ids[index]!;
    inFlight++;
    acked[index] = 0;
    replied[index] = 0;
    sentAt[index] = nowUs();
    client.sendMessage(id, { s: id, u: index, p: pad });
  };
  opened.clients.forEach((client, index) => {
    // Both halves in: the round trip is done (the reply's time), and the next message goes.
    const settle = (at: number) => {
      if (acked[index] === 0 || replied[index] === 0) return;
      inFlight--;
      rtts.push((replied[index] as number) - (sentAt[index] as number));
      ackLatencies.push((acked[index] as number) - (sentAt[index] as number));
      if (at < end) send(client, index);
    };
    client.onAck = (id, at, frame) => {
      if (id !== String(ids[index]) || acked[index] !== 0) return void errors++;
      if (queued && typeof (frame.data as { entry?: unknown } | undefined)?.entry !== 'string') errors++;
      acked[index] = at;
      settle(at);
    };
    client.onData = (data, at) => {
      const echo = (data as unknown as { echo?: { s?: unknown; u?: unknown } } | null)?.echo;
      if (echo?.s !== ids[index] || echo?.u !== index || replied[index] !== 0) return void errors++;
      replied[index] = at;
      settle(at);
    };
    client.onError = () => {
      errors++;
    };
  });
  // Warm-up, not counted: the same number of messages for every target, at least 200 ms.
  opened.clients.forEach((client, index) => send(client, index));
  await sleep(200);
  await until(() => rtts.length >= (params.warmup ?? 5_000), 15_000);
  const [before, workersBefore] = await Promise.all([stats(), workerStats()]);
  const redisBefore = redisCpu();
  const counted = rtts.length;
  const start = nowUs();
  end = start + durationMs * 1000;
  await sleep(durationMs);
  const total = rtts.length - counted;
  const elapsedS = (nowUs() - start) / 1e6;
  const [after, workersAfter] = await Promise.all([stats(), workerStats()]);
  const redisAfter = redisCpu();
  const drained = await until(() => inFlight === 0, 2_000);
  const closed = opened.clients.filter((client) => client.closedWith !== undefined).length;
  if (!drained) errors += inFlight;
  errors += closed;
  const workersEnd = await workerStats();
  for (const worker of workersEnd) errors += worker.failed + worker.dead;
  const rtt = distribution(rtts.slice(counted, counted + total));
  const ack = distribution(ackLatencies.slice(counted, counted + total));
  for (const client of opened.clients) client.close();
  const gatewayCpu = cpuPer(before, after, total);
  const sum = (list: WorkerStats[]) => list.reduce((acc, worker) => acc + worker.cpuUs, 0);
  const workerCpu = workerPorts.length > 0 ? (sum(workersAfter) - sum(workersBefore)) / total : 0;
  const redisCpuPer = redisBefore !== undefined && redisAfter !== undefined ? (redisAfter - redisBefore) / total : 0;
  const metrics: Metrics = {
    'msg/s': total / elapsedS,
    'p50_ms': ms(rtt.p50),
    'p99_ms': ms(rtt.p99),
    'ack_p50_ms': ms(ack.p50),
    'ack_p99_ms': ms(ack.p99),
    'gateway_cpu_us/msg': gatewayCpu,
  };
  if (workerPorts.length > 0) {
    metrics['worker_cpu_us/msg'] = workerCpu;
    // How evenly the group spread the entries: the busiest worker's share of all it processed.
    const processed = workersEnd.map((worker) => worker.processed);
    const all = processed.reduce((acc, count) => acc + count, 0);
    metrics['busiest_worker_share'] = all === 0 ? Number.NaN : Math.max(...processed) / all;
  }
  if (redisPid !== undefined) metrics['redis_cpu_us/msg'] = redisCpuPer;
  metrics['total_cpu_us/msg'] = gatewayCpu + workerCpu + redisCpuPer;
  metrics.errors = errors;
  return metrics;
}

/**
 * 10. The gateway's HTTP publish API (`gateway`: the standalone gateway, log level info): `subscribers`
 * WebSocket clients on `topics` topics, then `publishers` concurrent backend requests over an undici
 * keep-alive pool (one connection each), each `POST /api/topics/:topic/messages` awaited before the
 * next, for `durationMs`; then the same publishers through the batch endpoint `POST /api/messages`,
 * `batch` messages per request. Latency is request sent to answer read; CPU is the gateway's per
 * publish (per message, batched). `errors` counts answers other than 200, results that are not
 * `deliveredLocally` the topic's subscribers, deliveries missing 2 s after the end and closed clients.
 */
async function publishApi(): Promise<Metrics> {
  const n = params.subscribers ?? 200;
  const topics = params.topics ?? 10;
  const publishers = params.publishers ?? 16;
  const durationMs = params.durationMs ?? 3_000;
  const batch = params.batch ?? 100;
  const opened = await openMany(n, SETUP_CONCURRENCY, longLived);
  let acks = 0;
  for (const client of opened.clients) {
    client.onAck = () => acks++;
    client.subscribe(`t${client.user % topics}`, 's');
  }
  if (!(await until(() => acks >= n, 10_000))) throw new Error(`only ${acks} of ${n} subscriptions acked`);
  const perTopic = Array.from({ length: topics }, (_, t) => opened.clients.filter((client) => client.user % topics === t).length);
  let received = 0;
  for (const client of opened.clients) client.onData = () => void received++;
  const pool = new Pool(`http://${HOST}:${port}`, { connections: publishers, pipelining: 1 });
  // `--set viaExpress=1`: a media type the API's fast path leaves to Express (same meaning), for the comparison.
  const contentType = params.viaExpress ? 'application/json;charset=utf-8' : 'application/json';
  const headers = { authorization: `Bearer ${GATEWAY_API_KEY}`, 'content-type': contentType };
  const pad = 'x'.repeat(60);
  let errors = 0;
  let expected = 0;
  let seq = 0;
  const post = async (path: string, body: unknown): Promise<unknown> => {
    const answer = await pool.request({ method: 'POST', path, headers, body: JSON.stringify(body) });
    const json = (await answer.body.json()) as unknown;
    if (answer.statusCode !== 200) errors++;
    return json;
  };
  const one = async () => {
    const topic = seq++ % topics;
    const answer = (await post(`/api/topics/t${topic}/messages`, { data: { s: seq, p: pad } })) as { deliveredLocally?: number };
    expected += perTopic[topic] as number;
    if (answer.deliveredLocally !== perTopic[topic]) errors++;
    return 1;
  };
  const many = async () => {
    const targets: number[] = [];
    const messages = Array.from({ length: batch }, () => {
      const topic = seq++ % topics;
      targets.push(topic);
      return { to: { topic: `t${topic}` }, data: { s: seq, p: pad } };
    });
    const answer = (await post('/api/messages', { messages })) as { results?: Array<{ deliveredLocally?: number }> };
    targets.forEach((topic, i) => {
      expected += perTopic[topic] as number;
      if (answer.results?.[i]?.deliveredLocally !== perTopic[topic]) errors++;
    });
    return batch;
  };
  /** `publishers` loops of `request` for `ms` (after `warmupMs` uncounted): messages/s, latencies, CPU per message. */
  const phase = async (request: () => Promise<number>, warmupMs: number, measureMs: number) => {
    const latencies: number[] = [];
    let counting = false;
    let count = 0;
    let end = nowUs() + (warmupMs + measureMs) * 1000;
    const loop = async () => {
      while (nowUs() < end) {
        const t0 = nowUs();
        const sent = await request();
        if (counting) {
          latencies.push(nowUs() - t0);
          count += sent;
        }
      }
    };
    const loops = Array.from({ length: publishers }, loop);
    await sleep(warmupMs);
    const before = await stats();
    counting = true;
    const start = nowUs();
    end = start + measureMs * 1000;
    await Promise.all(loops);
    const elapsedS = (nowUs() - start) / 1e6;
    const after = await stats();
    return { rate: count / elapsedS, latency: distribution(latencies), cpu: cpuPer(before, after, count) };
  };
  const single = await phase(one, params.warmupMs ?? 500, durationMs);
  // `--set batch=0`: the single-publish phase only.
  const batched = batch > 0 ? await phase(many, params.warmupMs ?? 500, durationMs) : undefined;
  await pool.close();
  if (!(await until(() => received >= expected, 2_000))) errors += expected - received;
  errors += opened.clients.filter((client) => client.closedWith !== undefined).length;
  for (const client of opened.clients) client.close();
  return {
    'publish/s': single.rate,
    'p50_ms': ms(single.latency.p50),
    'p99_ms': ms(single.latency.p99),
    'cpu_us/publish': single.cpu,
    'deliveries/s': (single.rate * n) / topics,
    ...(batched && {
      'batch_msg/s': batched.rate,
      'batch_p50_ms': ms(batched.latency.p50),
      'batch_p99_ms': ms(batched.latency.p99),
      'cpu_us/batch_msg': batched.cpu,
    }),
    deliveries: received,
    errors,
  };
}

/** Scale: hold as many idle authenticated connections as asked, from `first` (one of several generators). */
async function scale(): Promise<Metrics> {
  const n = params.connections ?? 10_000;
  const first = params.first ?? 0;
  const opened = await openMany(n, params.concurrency ?? SETUP_CONCURRENCY, longLived, {
    first,
    offset: first,
  });
  process.send?.({ holding: true, metrics: { 'setup_conn/s': n / (opened.elapsedUs / 1e6) } });
  // Held until the orchestrator has read the server's RSS and ends this process.
  await sleep(params.holdMs ?? 600_000);
  return {};
}

const scenarios = { connect, idle, broadcast, topic, push, echo, churn, history, rpc, queue, 'publish-api': publishApi, scale } as const;

scenarios[config.scenario]().then(
  (metrics) => {
    process.send?.({ metrics }, () => process.exit(0));
  },
  (error: unknown) => {
    process.send?.({ error: error instanceof Error ? error.message : String(error) }, () => process.exit(1));
  },
);
