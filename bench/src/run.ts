/**
 * `npm run bench [-- --quick | --smoke | --scale] [--rounds N] [--only a,b] [--out file] [--cpu-prof]`
 *
 * Runs every scenario against every target, each target in its own server process and each run
 * with its own load-generator process, alternating targets (A B C A B C ...) for several rounds;
 * prints the medians with ratios against each scenario's baseline (raw ws, but for history, rpc
 * and queue)
 * and writes the results as JSON.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { control } from './clients.js';
import {
  behaviour,
  type LoadConfig,
  median,
  type Metrics,
  type ScenarioName,
  type ServerConfig,
  type ServerStats,
  type Target,
  usesRedis,
  workersOf,
} from './common.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const benchRoot = path.resolve(here, '..');
const SERVER_JS = path.join(here, 'server.js');
const LOAD_JS = path.join(here, 'loadgen.js');
const BACKEND_JS = path.join(here, 'backend.js');
const WORKER_JS = path.join(here, 'queue-worker.js');
/** Asked of the shell before each process starts; the hard limit caps what it gets. */
const WANTED_OPEN_FILES = 200_000;

type Mode = 'full' | 'quick' | 'smoke';

interface Scenario {
  name: ScenarioName;
  title: string;
  targets: Target[];
  /** The target each ratio is taken against. */
  baseline: Target;
  params: Record<string, number>;
  rounds: number;
  server?: Omit<ServerConfig, 'target'>;
}

const THREE: Target[] = ['ws', 'authsocket', 'socketio'];
/** The fan-out scenarios add Node's floor: one prebuilt frame written straight to each TCP socket. */
const FANOUT: Target[] = ['ws', 'ws-floor', 'authsocket', 'socketio'];

function plan(mode: Mode, rounds: number | undefined): Scenario[] {
  const size = <T>(full: T, quick: T, smoke: T): T => (mode === 'full' ? full : mode === 'quick' ? quick : smoke);
  const r = (full: number, quick: number) => rounds ?? size(full, quick, 1);
  const connections = size(3_000, 800, 200);
  const idle = size(10_000, 1_500, 300);
  const fanout = size(5_000, 1_500, 200);
  const churnUsers = size(5_000, 800, 100);
  const historyUsers = size(1_000, 400, 100);
  const rpcConnections = size(200, 50, 10);
  const queueConnections = size(100, 30, 5);
  const subscribers = size(1_000, 200, 20);
  return [
    {
      name: 'connect',
      title: `connect + auth: ${connections} connections, concurrency 100`,
      targets: ['ws', 'authsocket', 'authsocket-ticket', 'socketio'],
      baseline: 'ws',
      params: { connections, concurrency: 100, warmup: size(300, 200, 50) },
      rounds: r(5, 2),
    },
    {
      name: 'idle',
      title: `idle memory: ${idle} authenticated connections`,
      targets: THREE,
      baseline: 'ws',
      params: { connections: idle, settleMs: size(2_000, 300, 200), warmup: size(300, 200, 50) },
      rounds: r(5, 2),
    },
    {
      name: 'broadcast',
      title: `broadcast fan-out: ${fanout} clients, 100-byte payload`,
      targets: FANOUT,
      baseline: 'ws',
      params: { clients: fanout, broadcasts: size(20, 6, 3), gapMs: 50 },
      rounds: r(5, 2),
    },
    {
      name: 'topic',
      title: `topic fan-out: ${fanout} clients subscribed to one topic, 100-byte payload`,
      targets: FANOUT,
      baseline: 'ws',
      params: { clients: fanout, broadcasts: size(20, 6, 3), gapMs: 50 },
      rounds: r(5, 2),
    },
    {
      name: 'push',
      title: `push to user: ${fanout} users, one push each (x${size(5, 2, 2)})`,
      targets: FANOUT,
      baseline: 'ws',
      params: { users: fanout, rounds: size(5, 2, 2) },
      rounds: r(5, 2),
    },
    {
      name: 'echo',
      title: `echo round trips: ${size(100, 100, 20)} clients, ${size(5, 1, 0.5)} s`,
      targets: ['ws', 'authsocket', 'authsocket-pma', 'socketio'],
      baseline: 'ws',
      params: { clients: size(100, 100, 20), durationMs: size(5_000, 1_000, 500) },
      rounds: r(5, 2),
    },
    {
      name: 'churn',
      title: `expiry churn: ${churnUsers} connections expiring within ${size(10, 2, 1)} s, refreshed in band`,
      targets: THREE,
      baseline: 'ws',
      params: {
        users: churnUsers,
        leadMs: size(12_000, 3_500, 3_000),
        spreadMs: size(10_000, 2_000, 1_000),
        warnMs: size(2_000, 1_000, 1_000),
        lateFraction: 0.2,
      },
      server: { reauthWindowMs: size(2_000, 1_000, 1_000) },
      rounds: r(3, 1),
    },
    {
      name: 'history',
      title: `history cost: ${historyUsers} users x ${size(20, 10, 5)} pushes; ${size(2_000, 1_000, 100)} publishes to 10 topics`,
      targets: ['authsocket-nohistory', 'authsocket'],
      baseline: 'authsocket-nohistory',
      params: { users: historyUsers, perUser: size(20, 10, 5), topics: 10, publishes: size(2_000, 1_000, 100) },
      rounds: r(5, 2),
    },
    {
      name: 'rpc',
      title: `rpc round trips: ${rpcConnections} connections, sequential rpcs for ${size(5, 1.5, 0.5)} s`,
      targets: ['ws', 'authsocket', 'authsocket-proxy', 'socketio'],
      baseline: 'authsocket',
      params: { connections: rpcConnections, durationMs: size(5_000, 1_500, 500), warmup: size(10_000, 3_000, 300) },
      rounds: r(5, 2),
    },
    {
      name: 'queue',
      title: `queue path: ${queueConnections} connections, sequential message -> ack + reply for ${size(5, 1.5, 0.5)} s`,
      targets: ['authsocket', 'authsocket-redis', 'queue-1', 'queue-3'],
      baseline: 'authsocket',
      params: { connections: queueConnections, durationMs: size(5_000, 1_500, 500), warmup: size(5_000, 1_500, 200) },
      rounds: r(5, 2),
      server: { echoReply: true },
    },
    {
      name: 'publish-api',
      title: `HTTP publish API: 16 keep-alive publishers, ${subscribers} subscribers on ${subscribers / 2} topics (2 deliveries a publish), ${size(5, 1.5, 0.5)} s single, then batches of 100`,
      targets: ['gateway'],
      baseline: 'gateway',
      params: {
        subscribers,
        // Two subscribers a topic: the API's own cost per publish, not the fan-out's.
        topics: subscribers / 2,
        publishers: 16,
        batch: 100,
        durationMs: size(5_000, 1_500, 500),
        warmupMs: size(1_000, 500, 200),
      },
      rounds: r(5, 2),
    },
  ];
}

// ---------------------------------------------------------------- processes

const live = new Set<ChildProcess>();
let pinned = false;

function killGroup(child: ChildProcess): void {
  live.delete(child);
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

function killAll(): void {
  for (const child of [...live]) killGroup(child);
}

process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}

/** Starts `script` with node in its own process group, file limit raised as far as the shell may. */
function startNode(script: string, env: Record<string, string>, nodeArgs: string[] = [], cpu?: number): ChildProcess {
  // With --pin, servers run on core 0 and load generators on core 1, so the two never trade places
  // on one core and a run measures the server, not the scheduler.
  const launch = cpu === undefined || !pinned ? 'exec "$0" "$@"' : `exec taskset -c ${cpu} "$0" "$@"`;
  const command = `ulimit -n ${WANTED_OPEN_FILES} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; ${launch}`;
  const child = spawn('bash', ['-c', command, process.execPath, ...nodeArgs, script], {
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, ...env },
  });
  live.add(child);
  return child;
}

interface Ready {
  ready: true;
  port: number;
  controlPort: number;
  openFileLimit: number;
  baseline: ServerStats;
}

function firstMessage<T>(child: ChildProcess, what: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no answer in ${timeoutMs} ms`)), timeoutMs);
    child.once('message', (message) => {
      clearTimeout(timer);
      resolve(message as T);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code}`));
    });
  });
}

interface ServerHandle {
  child: ChildProcess;
  ready: Ready;
}

/** What ws reads to skip its optional native helpers (`bufferutil`, `utf-8-validate`) even when installed. */
const WITHOUT_NATIVE = { WS_NO_BUFFER_UTIL: '1', WS_NO_UTF_8_VALIDATE: '1' } as const;

async function startServer(config: ServerConfig, profileDir: string | undefined, native = true): Promise<ServerHandle> {
  const nodeArgs = [
    '--expose-gc',
    ...(profileDir ? ['--cpu-prof', '--cpu-prof-interval=200', `--cpu-prof-dir=${profileDir}`] : []),
  ];
  const env = { BENCH_SERVER: JSON.stringify(config), ...(native ? {} : WITHOUT_NATIVE) };
  const child = startNode(SERVER_JS, env, nodeArgs, 0);
  const ready = await firstMessage<Ready>(child, `server ${config.target}`, 15_000);
  return { child, ready };
}

/** Ends a server: politely first (so a CPU profile gets written), then the whole process group. */
async function stopServer(handle: { child: ChildProcess }): Promise<void> {
  const { child } = handle;
  if (child.exitCode === null && child.connected) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.send({ cmd: 'exit' });
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
  }
  killGroup(child);
}

interface BackendHandle {
  child: ChildProcess;
  ready: { ready: true; port: number; controlPort: number };
}

/** The rpc backend of `authsocket-proxy`: its own process, on the server's core (both are the server side). */
async function startBackend(): Promise<BackendHandle> {
  const child = startNode(BACKEND_JS, {}, [], 0);
  const ready = await firstMessage<BackendHandle['ready']>(child, 'rpc backend', 15_000);
  return { child, ready };
}

interface WorkerHandle {
  child: ChildProcess;
  ready: { ready: true; controlPort: number };
}

/** A queue worker (`queue-*`): its own process, on the server's core like the rpc backend. */
async function startWorker(redisUrl: string, consumer: string): Promise<WorkerHandle> {
  const child = startNode(WORKER_JS, { BENCH_WORKER: JSON.stringify({ redisUrl, consumer }) }, [], 0);
  const ready = await firstMessage<WorkerHandle['ready']>(child, `queue worker ${consumer}`, 15_000);
  return { child, ready };
}

interface RedisHandle {
  child: ChildProcess;
  url: string;
  pid: number;
  dir: string;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A fresh redis-server for one run (`authsocket-redis`, `queue-*`): a free loopback port, no
 * persistence, in a temporary directory, on the server's core (with --pin; taskset execs it, so the
 * pid is redis-server's own, for its CPU in /proc).
 */
async function startRedis(): Promise<RedisHandle> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'authsocket-bench-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
  const [command, argv] = pinned ? ['taskset', ['-c', '0', 'redis-server', ...args]] : ['redis-server', args];
  const child = spawn(command as string, argv as string[], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start in 5 s:\n${output}`)), 5_000);
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4_000);
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}:\n${output}`));
    });
  });
  // Keep draining its output so a full pipe never blocks it.
  child.stdout?.resume();
  child.stderr?.resume();
  return { child, url: `redis://127.0.0.1:${port}`, pid: child.pid as number, dir };
}

function stopRedis(redis: RedisHandle): void {
  killGroup(redis.child);
  rmSync(redis.dir, { recursive: true, force: true });
}

async function runLoad(config: LoadConfig, timeoutMs: number): Promise<Metrics> {
  const child = startNode(LOAD_JS, { BENCH_LOAD: JSON.stringify(config) }, [], 1);
  try {
    const answer = await firstMessage<{ metrics?: Metrics; error?: string }>(
      child,
      `load ${config.scenario}/${config.target}`,
      timeoutMs,
    );
    if (answer.error !== undefined || !answer.metrics) throw new Error(answer.error ?? 'no metrics');
    return answer.metrics;
  } finally {
    killGroup(child);
  }
}

// ---------------------------------------------------------------- output

function print(line = ''): void {
  process.stdout.write(`${line}\n`);
}

function format(value: number): string {
  if (!Number.isFinite(value)) return '-';
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toFixed(3);
}

type Medians = Record<string, Record<string, Metrics>>;

function table(scenario: Scenario, medians: Record<string, Metrics>): void {
  const targets = scenario.targets;
  const metricNames = [...new Set(targets.flatMap((target) => Object.keys(medians[target] ?? {})))];
  const base = medians[scenario.baseline] ?? {};
  const width = Math.max(16, ...metricNames.map((name) => name.length + 2));
  const cell = 22;
  print(`\n## ${scenario.title}  (medians of ${scenario.rounds} round${scenario.rounds === 1 ? '' : 's'}; ratio vs ${scenario.baseline})`);
  print(`${''.padEnd(width)}${targets.map((target) => target.padStart(cell)).join('')}`);
  for (const name of metricNames) {
    const cells = targets.map((target) => {
      const value = medians[target]?.[name] ?? Number.NaN;
      const reference = base[name] ?? Number.NaN;
      const ratio =
        target === scenario.baseline || !Number.isFinite(reference) || reference === 0 ? '' : ` (${(value / reference).toFixed(2)}x)`;
      return `${format(value)}${ratio}`.padStart(cell);
    });
    print(`${name.padEnd(width)}${cells.join('')}`);
  }
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: benchRoot, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

// ---------------------------------------------------------------- main

interface Options {
  mode: Mode;
  scale: boolean;
  rounds: number | undefined;
  only: Set<string> | undefined;
  out: string | undefined;
  cpuProf: boolean;
  connections: number | undefined;
  targets: Target[] | undefined;
  snapshot: boolean;
  /** `--no-native [targets]`: these servers (`all`: every one) run without ws's native helpers. */
  noNative: Set<string> | undefined;
  /** `--set name=value`: overrides a scenario parameter. */
  set: Record<string, number>;
  pin: boolean;
}

function parseArgs(argv: string[]): Options {
  const options: Options = {
    mode: 'full',
    scale: false,
    rounds: undefined,
    only: undefined,
    out: undefined,
    cpuProf: false,
    connections: undefined,
    targets: undefined,
    snapshot: false,
    noNative: undefined,
    set: {},
    // Server on core 0, load generator on core 1, when there are two cores to give.
    pin: os.cpus().length >= 2,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const next = argv[++i];
      if (next === undefined) throw new Error(`${arg} needs a value`);
      return next;
    };
    if (arg === '--quick') options.mode = 'quick';
    else if (arg === '--smoke') options.mode = 'smoke';
    else if (arg === '--scale') options.scale = true;
    else if (arg === '--rounds') options.rounds = Number(value());
    else if (arg === '--only') options.only = new Set(value().split(','));
    else if (arg === '--out') options.out = value();
    else if (arg === '--cpu-prof') options.cpuProf = true;
    else if (arg === '--snapshot') options.snapshot = true;
    else if (arg === '--no-native') options.noNative = new Set(value().split(','));
    else if (arg === '--pin') options.pin = true;
    else if (arg === '--no-pin') options.pin = false;
    else if (arg === '--set') {
      const [name, raw] = value().split('=');
      if (name === undefined || raw === undefined || !Number.isFinite(Number(raw))) throw new Error('--set expects name=number');
      options.set[name] = Number(raw);
    }
    else if (arg === '--connections') options.connections = Number(value());
    else if (arg === '--targets') options.targets = value().split(',') as Target[];
    else throw new Error(`unknown argument ${arg}`);
  }
  return options;
}

function meta(mode: string) {
  return {
    date: new Date().toISOString(),
    mode,
    pinned,
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    commit: git(['rev-parse', '--short', 'HEAD']),
    dirtyServer: git(['status', '--porcelain', '--', '../packages/server', '../packages/protocol', '../packages/proxy', '../packages/redis', '../packages/worker']) !== '',
    loadavgStart: os.loadavg(),
    /** ws's optional native helper as the servers would load it (unless `--no-native`). */
    bufferutil: installed('bufferutil'),
  };
}

function installed(name: string): string | undefined {
  try {
    return (createRequire(import.meta.url)(`${name}/package.json`) as { version: string }).version;
  } catch {
    return undefined;
  }
}

async function benchmark(options: Options): Promise<void> {
  const scenarios = plan(options.mode, options.rounds)
    .filter((scenario) => !options.only || options.only.has(scenario.name))
    .map((scenario) => ({
      ...scenario,
      targets: options.targets ?? scenario.targets,
      params: { ...scenario.params, ...options.set },
    }));
  const info = meta(options.mode);
  print(`authsocket bench (${options.mode}) — node ${info.node}, ${info.cpus} cores, commit ${info.commit}${info.dirtyServer ? ' (server sources modified)' : ''}`);
  print(`load average at start: ${info.loadavgStart.map((v) => v.toFixed(2)).join(' ')}`);
  print(`bufferutil: ${info.bufferutil ?? 'not installed'}${options.noNative ? ` (not loaded by: ${[...options.noNative].join(', ')})` : ''}`);
  const profileDir = options.cpuProf ? path.join(benchRoot, 'results', 'profiles') : undefined;
  const runs: Array<{ scenario: string; round: number; target: Target; metrics: Metrics; loadavg: number }> = [];
  const failures: Array<{ scenario: string; round: number; target: Target; error: string }> = [];
  const medians: Medians = {};
  const loads: Record<string, number[]> = {};
  for (const scenario of scenarios) {
    const started = Date.now();
    loads[scenario.name] = [os.loadavg()[0] as number];
    for (let round = 1; round <= scenario.rounds; round++) {
      for (const target of scenario.targets) {
        const backend = behaviour(target) === 'authsocket-proxy' ? await startBackend() : undefined;
        const rpcUrl = backend && `http://127.0.0.1:${backend.ready.port}/rpc`;
        // The queue path: a fresh redis-server, then the workers (they create the group), then the gateway.
        const redis = usesRedis(target) ? await startRedis() : undefined;
        const workers: WorkerHandle[] = [];
        let server: ServerHandle;
        try {
          const count = workersOf(target);
          if (redis && count > 0) {
            workers.push(...(await Promise.all(Array.from({ length: count }, (_, i) => startWorker(redis.url, `w${i + 1}`)))));
          }
          server = await startServer(
            {
              target,
              ...scenario.server,
              ...(rpcUrl === undefined ? {} : { rpcUrl }),
              ...(redis === undefined ? {} : { redisUrl: redis.url }),
            },
            profileDir && path.join(profileDir, `${scenario.name}-${target}`),
            !(options.noNative?.has('all') || options.noNative?.has(target)),
          );
        } catch (error) {
          for (const worker of workers) await stopServer(worker);
          if (redis) stopRedis(redis);
          if (backend) await stopServer(backend);
          throw error;
        }
        try {
          const metrics = await runLoad(
            {
              scenario: scenario.name,
              target,
              port: server.ready.port,
              controlPort: server.ready.controlPort,
              ...(backend === undefined ? {} : { backendControlPort: backend.ready.controlPort }),
              ...(workers.length === 0 ? {} : { workerControlPorts: workers.map((worker) => worker.ready.controlPort) }),
              ...(redis === undefined ? {} : { redisPid: redis.pid }),
              params: { ...scenario.params, ...(options.snapshot ? { snapshot: 1 } : {}) },
            },
            180_000,
          );
          if ((metrics.errors ?? 0) > 0) print(`  ! ${scenario.name}/${target} round ${round}: ${metrics.errors} errors`);
          runs.push({ scenario: scenario.name, round, target, metrics, loadavg: os.loadavg()[0] as number });
        } catch (error) {
          // One failed run (a reset under a load spike) is reported and left out of the medians.
          const message = error instanceof Error ? error.message : String(error);
          failures.push({ scenario: scenario.name, round, target, error: message });
          print(`  ! ${scenario.name}/${target} round ${round} failed: ${message}`);
        } finally {
          await stopServer(server);
          if (backend) await stopServer(backend);
          await Promise.all(workers.map((worker) => stopServer(worker)));
          if (redis) stopRedis(redis);
        }
      }
    }
    loads[scenario.name]?.push(os.loadavg()[0] as number);
    const byTarget: Record<string, Metrics> = {};
    for (const target of scenario.targets) {
      const mine = runs.filter((run) => run.scenario === scenario.name && run.target === target);
      const names = [...new Set(mine.flatMap((run) => Object.keys(run.metrics)))];
      byTarget[target] = Object.fromEntries(
        names.map((name) => [name, median(mine.map((run) => run.metrics[name] ?? Number.NaN))]),
      );
    }
    medians[scenario.name] = byTarget;
    table(scenario, byTarget);
    print(`  (${((Date.now() - started) / 1000).toFixed(1)} s, load average ${loads[scenario.name]?.map((v) => v.toFixed(2)).join(' -> ')})`);
  }
  const ratios: Record<string, Record<string, Metrics>> = {};
  for (const scenario of scenarios) {
    const byTarget = medians[scenario.name] ?? {};
    const base = byTarget[scenario.baseline] ?? {};
    ratios[scenario.name] = Object.fromEntries(
      scenario.targets
        .filter((target) => target !== scenario.baseline)
        .map((target) => [
          target,
          Object.fromEntries(Object.entries(byTarget[target] ?? {}).map(([name, value]) => [name, value / (base[name] ?? Number.NaN)])),
        ]),
    );
  }
  const result = {
    meta: { ...info, loadavgEnd: os.loadavg(), loadavgPerScenario: loads },
    scenarios: scenarios.map(({ name, title, targets, baseline, params, rounds, server }) => ({
      name,
      title,
      targets,
      baseline,
      params,
      rounds,
      server,
    })),
    medians,
    ratios,
    runs,
    failures,
  };
  writeResult(result, options.out, options.mode);
}

function writeResult(result: unknown, out: string | undefined, label: string): void {
  const file = out ?? path.join(benchRoot, 'results', `${label}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  print(`\nresults: ${path.relative(process.cwd(), file)}`);
}

/**
 * Scale: one authsocket gateway process holding as many idle authenticated connections as the
 * machine allows (100,000 asked), opened by several load generators over 127.0.0.x source
 * addresses; RSS read after a full GC.
 */
async function scaleRun(options: Options): Promise<void> {
  const info = meta('scale');
  const target = options.targets?.[0] ?? 'authsocket';
  const server = await startServer({ target }, undefined);
  try {
    const limit = server.ready.openFileLimit;
    const wanted = options.connections ?? 100_000;
    // The server needs one descriptor per connection plus a few of its own.
    const connections = Math.min(wanted, limit - 100);
    print(`${target} scale — node ${info.node}, load average ${info.loadavgStart.map((v) => v.toFixed(2)).join(' ')}`);
    print(`server open-file limit: ${limit}${connections < wanted ? ` — capped at ${connections} of the ${wanted} connections asked` : ''}`);
    const perGenerator = 15_000;
    const generators = Math.ceil(connections / perGenerator);
    const base = await control<ServerStats>(server.ready.controlPort, 'stats', { gc: 1 });
    const started = Date.now();
    const children: ChildProcess[] = [];
    const holding: Array<Promise<{ metrics: Metrics }>> = [];
    for (let g = 0; g < generators; g++) {
      const first = g * perGenerator;
      const count = Math.min(perGenerator, connections - first);
      const child = startNode(LOAD_JS, {
        BENCH_LOAD: JSON.stringify({
          scenario: 'scale',
          target,
          port: server.ready.port,
          controlPort: server.ready.controlPort,
          params: { connections: count, first, concurrency: 100 },
        } satisfies LoadConfig),
      });
      children.push(child);
      holding.push(firstMessage(child, `scale generator ${g}`, 600_000));
    }
    try {
      const answers = await Promise.all(holding);
      for (const answer of answers as Array<{ metrics?: Metrics; error?: string }>) {
        if (answer.error !== undefined || !answer.metrics) throw new Error(`scale generator: ${answer.error ?? 'no metrics'}`);
      }
      const setupSeconds = (Date.now() - started) / 1000;
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      const held = await control<ServerStats>(server.ready.controlPort, 'stats', { gc: 1 });
      const metrics: Metrics = {
        connections: held.connections,
        'rss_MiB': held.rss / 1048576,
        'rss_KiB/conn': (held.rss - base.rss) / connections / 1024,
        'heap_MiB': held.heapUsed / 1048576,
        'heap_KiB/conn': (held.heapUsed - base.heapUsed) / connections / 1024,
        'setup_s': setupSeconds,
        'cpu_us/conn': (held.cpuUs - base.cpuUs) / connections,
        generators,
        'generator_conn/s': median(answers.map((answer) => answer.metrics['setup_conn/s'] ?? Number.NaN)),
        openFileLimit: limit,
      };
      for (const [name, value] of Object.entries(metrics)) print(`${name.padEnd(20)}${format(value).padStart(14)}`);
      writeResult({ meta: { ...info, loadavgEnd: os.loadavg(), wanted, target }, metrics }, options.out, 'scale');
    } finally {
      for (const child of children) killGroup(child);
    }
  } finally {
    await stopServer(server);
  }
}

const options = parseArgs(process.argv.slice(2));
pinned = options.pin;
(options.scale ? scaleRun(options) : benchmark(options)).then(
  () => {
    killAll();
    process.exit(0);
  },
  (error: unknown) => {
    console.error(error);
    killAll();
    process.exit(1);
  },
);
