/**
 * One target server in its own process. Configuration comes in BENCH_SERVER (JSON); the process
 * reports `{ready, port, controlPort}` over IPC, then takes commands on a control HTTP server on
 * 127.0.0.1 (stats with `process.cpuUsage()` and RSS, broadcast, push, publish, churn pushes).
 * The control server is separate from the target's port, so it never shares its listener.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeHeapSnapshot } from 'node:v8';
import { appData, HOST, nowUs, type ServerConfig, type ServerStats } from './common.js';
import { processStats } from './process-stats.js';
import { startAuthsocket } from './targets/authsocket.js';
import { startGatewayTarget } from './targets/gateway.js';
import { startSocketio } from './targets/socketio.js';
import type { TargetServer } from './targets/types.js';
import { startWs } from './targets/ws.js';

const config = JSON.parse(process.env.BENCH_SERVER ?? '{}') as ServerConfig;

async function start(): Promise<TargetServer> {
  switch (config.target) {
    case 'ws':
    case 'ws-floor':
      return startWs(config);
    case 'socketio':
      return startSocketio(config);
    case 'gateway':
      return startGatewayTarget();
    default:
      return startAuthsocket(config);
  }
}

const target = await start();
const gc = (globalThis as { gc?: () => void }).gc;

function stats(collect: boolean): ServerStats {
  if (collect && gc) {
    gc();
    gc();
  }
  return processStats(target.connections());
}

/** Expiry churn: pushes to every user once per second, in slices every `tickMs`, counting per user. */
let churn: { sent: number[]; undelivered: number; timer: NodeJS.Timeout } | undefined;

function startChurn(users: number, tickMs: number, durationMs: number, size: number): void {
  const slices = Math.max(1, Math.round(1000 / tickMs));
  const state = { sent: new Array<number>(users).fill(0), undelivered: 0, timer: undefined as unknown as NodeJS.Timeout };
  const end = Date.now() + durationMs;
  let tick = 0;
  const run = async () => {
    if (Date.now() >= end) return;
    const slice = tick++ % slices;
    const pending: Array<number | Promise<number>> = [];
    for (let user = slice; user < users; user += slices) {
      const seq = ++state.sent[user]!;
      pending.push(target.push(`u${user}`, appData(seq, nowUs(), size, user)));
    }
    for (const delivered of await Promise.all(pending)) if (delivered === 0) state.undelivered++;
    state.timer = setTimeout(run, tickMs);
  };
  state.timer = setTimeout(run, 0);
  churn = state;
}

async function command(name: string, body: Record<string, number>): Promise<unknown> {
  switch (name) {
    case 'stats':
      return stats(body.gc === 1);
    case 'broadcast': {
      // The server's own fan-out time: from the stamp to the last socket write handed to the kernel.
      const stamp = nowUs();
      await target.broadcast(appData(body.seq ?? 0, stamp, body.size ?? 100));
      return { elapsedUs: nowUs() - stamp };
    }
    case 'push': {
      // Every user in `[0, users)` gets `perUser` messages; each is stamped when its send is called.
      const users = body.users ?? 0;
      const perUser = body.perUser ?? 1;
      const size = body.size ?? 100;
      const pending: Array<number | Promise<number>> = [];
      const started = nowUs();
      for (let round = 0; round < perUser; round++) {
        for (let user = 0; user < users; user++) {
          pending.push(target.push(`u${user}`, appData(round + 1, nowUs(), size, user)));
        }
      }
      const delivered = (await Promise.all(pending)).reduce((sum, count) => sum + count, 0);
      return { delivered, elapsedUs: nowUs() - started };
    }
    case 'publish-one': {
      // Topic fan-out: one publish to `room0`, timed like a broadcast.
      if (!target.publish) throw new Error('publish is not supported by this target');
      const stamp = nowUs();
      await target.publish('room0', appData(body.seq ?? 0, stamp, body.size ?? 100));
      return { elapsedUs: nowUs() - stamp };
    }
    case 'publish': {
      if (!target.publish) throw new Error('publish is not supported by this target');
      const topics = body.topics ?? 1;
      const count = body.count ?? 1;
      const size = body.size ?? 100;
      const pending: Array<number | Promise<number>> = [];
      for (let i = 0; i < count; i++) pending.push(target.publish(`room${i % topics}`, appData(i + 1, nowUs(), size)));
      const delivered = (await Promise.all(pending)).reduce((sum, n) => sum + n, 0);
      return { delivered };
    }
    case 'heap-snapshot': {
      // Beside the results, named after the target; for `bench/dist/heap.js` to break down.
      const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../results/heap');
      mkdirSync(dir, { recursive: true });
      if (gc) gc();
      return { file: writeHeapSnapshot(path.join(dir, `${config.target}-${process.pid}.heapsnapshot`)) };
    }
    case 'churn-start':
      startChurn(body.users ?? 0, body.tickMs ?? 100, body.durationMs ?? 10_000, body.size ?? 100);
      return {};
    case 'churn-result': {
      if (churn) clearTimeout(churn.timer);
      return { sent: churn?.sent ?? [], undelivered: churn?.undelivered ?? 0, reauths: target.reauths() };
    }
    default:
      throw new Error(`unknown command ${name}`);
  }
}

const control = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const name = (req.url ?? '/').slice(1);
    const body = chunks.length > 0 ? (JSON.parse(Buffer.concat(chunks).toString()) as Record<string, number>) : {};
    command(name, body).then(
      (result) => {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result));
      },
      (error: unknown) => {
        res.writeHead(500).end(String(error));
      },
    );
  });
});

function openFileLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((row) => row.startsWith('Max open files'));
  return Number(line?.split(/\s+/)[3] ?? Number.NaN);
}

process.on('message', (message: { cmd?: string }) => {
  if (message.cmd === 'exit') process.exit(0);
});
process.on('disconnect', () => process.exit(0));

/** The target's port: its own `http` listened on here, or the port a target that listens itself bound. */
function listenTarget(): Promise<number> {
  const server = target.http;
  if (server === undefined) return Promise.resolve(target.port as number);
  return new Promise((resolve) => {
    server.listen({ host: HOST, port: 0, backlog: 4096 }, () => resolve((server.address() as AddressInfo).port));
  });
}

void listenTarget().then((port) => {
  // Never close an idle control connection: the load generator's keep-alive agent reuses it after a
  // phase longer than Node's 5 s default, and a generator busy with its own load sees the close too
  // late ("socket hang up" on the next stats call).
  control.keepAliveTimeout = 0;
  control.listen({ host: HOST, port: 0 }, () => {
    process.send?.({
      ready: true,
      port,
      controlPort: (control.address() as AddressInfo).port,
      openFileLimit: openFileLimit(),
      baseline: stats(true),
    });
  });
});
