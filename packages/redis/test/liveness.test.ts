import type { Logger } from '@authsocket/server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EngineNodes, RedisServer, TcpProxy, until } from './helpers.js';

// Liveness is what notices a frozen server or a silent partition: TCP alone sees neither (nothing
// is closed, and a SIGSTOPped process's kernel still ACKs), so without the PING the engine stays
// `ready` for minutes. The bounds below are generous multiples of the configured timeouts.
const LIVENESS = { livenessIntervalMs: 200, livenessTimeoutMs: 500 };

let redis: RedisServer;
const nodes = new EngineNodes();

beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  redis.signal('SIGCONT');
  await redis.stop();
});
afterEach(async () => {
  redis.signal('SIGCONT');
  await nodes.closeAll();
});

/** Every log line as `level message [status]`, to check what an operator sees. */
function recorder(lines: string[]): Logger {
  const at = (level: string) => (fields: Record<string, unknown>, message: string) =>
    lines.push(`${level} ${message}${fields.status ? ` ${String(fields.status)}` : ''}`);
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

const node = (url = redis.url, logger?: Logger) =>
  nodes.start(url, {
    commandTimeoutMs: 5_000,
    maxReconnectDelayMs: 100,
    connectTimeoutMs: 1_000,
    ...LIVENESS,
    ...(logger ? { logger } : {}),
  });

describe('liveness PING', () => {
  it('marks the broker not ready when Redis freezes (SIGSTOP), and ready again when it thaws', async () => {
    const lines: string[] = [];
    const a = await node(redis.url, recorder(lines));
    const frozen = Date.now();
    redis.signal('SIGSTOP');
    // The command timeout is 5 s: only the PING (500 ms) can notice this soon.
    await until(() => a.engine.status === 'reconnecting', 2_500, 'reconnecting while frozen');
    const detectedAfterMs = a.statusAt.at(-1)! - frozen;
    expect(detectedAfterMs).toBeLessThan(LIVENESS.livenessTimeoutMs + LIVENESS.livenessIntervalMs + 1_000);
    redis.signal('SIGCONT');
    await a.engine.ready(3_000);
    expect(a.statuses).toEqual(['ready', 'reconnecting', 'ready']);
    expect(await a.engine.broker.publish({ to: { user: 'x' }, data: '"thawed"', stream: 'user:thawed' })).toBe(1);
    // An operator sees it degrade and recover, at warn.
    expect(lines).toContain('warn redis link not answering: reconnecting');
    expect(lines).toContain('warn redis broker status reconnecting');
    expect(lines).toContain('warn redis broker status ready');
  });

  it('notices a black-holed link, and delivers again soon after it heals, repairing what it missed', async () => {
    const proxy = await TcpProxy.start(redis.port);
    try {
      const a = await node();
      const b = await node(proxy.url);
      const stream = 'user:blackhole';
      const publish = (data: number) => a.engine.broker.publish({ to: { user: 'blackhole' }, data: String(data), stream });
      await publish(1);
      await until(() => b.received.length === 1, 2_000, 'before the black hole');
      proxy.blackhole();
      await until(() => b.engine.status === 'reconnecting', 2_500, 'b reconnecting');
      for (let i = 2; i <= 4; i++) await publish(i);
      const healed = Date.now();
      proxy.heal();
      await b.engine.ready(3_000);
      const recoveredAfterMs = Date.now() - healed;
      await publish(5);
      await until(() => b.received.length === 5, 2_000, 'deliveries after healing');
      expect(b.received.map((p) => p.data)).toEqual(['1', '2', '3', '4', '5']);
      expect(b.statuses).toEqual(['ready', 'reconnecting', 'ready']);
      // Well under TCP's retransmit backoff (seconds to minutes): a fresh connection, not the old one.
      expect(recoveredAfterMs).toBeLessThan(2_000);
    } finally {
      await proxy.close();
    }
  });
});
