/**
 * One queue worker of the `queue-*` targets, in its own process: `createWorker` of
 * `@authsocket/worker` on the run's redis-server, in the consumer group every worker of the run
 * shares, its handler answering each entry with `reply({echo: data})` (through the Redis broker, to
 * the sender's connection on the gateway). Defaults for everything else (concurrency 16, block 1 s,
 * signature checked with the forwarder's secret). Like the rpc backend it reports
 * `{ready, controlPort}` over IPC and answers `stats` on a control listener, for its CPU and counts.
 */
import type { AddressInfo } from 'node:net';
import { exitWithRunner, processStats, statsListener } from './process-stats.js';
import { createWorker } from '@authsocket/worker';
import { FORWARD_SECRET, HOST, QUEUE_GROUP, QUEUE_STREAM, type WorkerConfig, type WorkerStats } from './common.js';

const config = JSON.parse(process.env.BENCH_WORKER ?? '{}') as WorkerConfig;

let processed = 0;
let failed = 0;
let dead = 0;

const worker = createWorker({
  redis: config.redisUrl,
  stream: QUEUE_STREAM,
  group: QUEUE_GROUP,
  consumer: config.consumer,
  verify: { secret: FORWARD_SECRET },
  handler: ({ data, reply }) => reply({ echo: data }),
});
worker.on('processed', () => processed++);
worker.on('failed', () => failed++);
worker.on('dead', () => dead++);

function stats(): WorkerStats {
  return { ...processStats(), processed, failed, dead };
}

const control = statsListener(stats);
exitWithRunner();

await worker.start();
control.listen({ host: HOST, port: 0 }, () => {
  process.send?.({ ready: true, port: 0, controlPort: (control.address() as AddressInfo).port });
});
