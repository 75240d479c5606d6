import type { BrokerStatus, ControlMessage, Publication } from '@authsocket/server';
import { createRedisEngine, type RedisEngine, type RedisEngineOptions, type RedisTarget } from '../src/index.js';

/**
 * Timeouts short enough that a test sees a dead, frozen or partitioned Redis noticed, and the
 * engine back, within seconds: the defaults take several seconds for each.
 */
export const FAST_LIVENESS = {
  commandTimeoutMs: 500,
  maxReconnectDelayMs: 100,
  livenessIntervalMs: 200,
  livenessTimeoutMs: 500,
} as const satisfies RedisEngineOptions;

/** One gateway node as the broker sees it: its own engine (own connections) and what its handlers got. */
export interface EngineNode {
  readonly engine: RedisEngine;
  readonly received: Publication[];
  readonly controls: ControlMessage[];
  /** Every status change, from before the broker's start. */
  readonly statuses: BrokerStatus[];
  /** When each of `statuses` was entered (ms since epoch). */
  readonly statusAt: number[];
  resyncs: number;
  /** What the publication handler returns: how many connections this node claims to have reached. */
  count: number;
}

/** The engines a test file starts, so that `closeAll` in `afterEach` leaves no connection behind. */
export class EngineNodes {
  readonly #engines: RedisEngine[] = [];

  /** An engine whose broker is started, recording everything it delivers. */
  async start(target: RedisTarget, options: RedisEngineOptions = {}): Promise<EngineNode> {
    const engine = this.track(createRedisEngine(target, options));
    const node: EngineNode = { engine, received: [], controls: [], statuses: [], statusAt: [], resyncs: 0, count: 1 };
    engine.broker.on('status', (status) => {
      node.statuses.push(status);
      node.statusAt.push(Date.now());
    });
    await engine.broker.start({
      publication: (publication) => {
        node.received.push(publication);
        return node.count;
      },
      control: (message) => node.controls.push(message),
      resync: () => {
        node.resyncs++;
      },
    });
    return node;
  }

  /** Closes `engine` with the others, for a test that builds its own. */
  track(engine: RedisEngine): RedisEngine {
    this.#engines.push(engine);
    return engine;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.#engines.splice(0).map((engine) => engine.close()));
  }
}
