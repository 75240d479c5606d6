// What every bench child process (server, backend, worker) shares with the runner: its CPU and
// memory, a control listener answering `GET /stats`, and exiting with the runner.
import http from 'node:http';
import type { ServerStats } from './common.js';

/** This process's CPU (user + system, µs) and memory, with `connections` it holds. */
export function processStats(connections = 0): ServerStats {
  const cpu = process.cpuUsage();
  const memory = process.memoryUsage();
  return {
    cpuUs: cpu.user + cpu.system,
    systemUs: cpu.system,
    rss: memory.rss,
    heapUsed: memory.heapUsed,
    heapTotal: memory.heapTotal,
    external: memory.external,
    connections,
  };
}

/** A control listener that answers `GET /stats` with `stats()` as JSON (not listening yet). */
export function statsListener(stats: () => unknown): http.Server {
  return http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url !== '/stats') return void res.writeHead(404).end(`unknown command ${req.url}`);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats()));
    });
  });
}

/** Exits on the runner's `{cmd: 'exit'}`, or when the runner's IPC channel goes away. */
export function exitWithRunner(): void {
  process.on('message', (message: { cmd?: string }) => {
    if (message.cmd === 'exit') process.exit(0);
  });
  process.on('disconnect', () => process.exit(0));
}
