import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// A smoke check only: the benchmark's numbers are never asserted here, just that a tiny run of
// every scenario completes and reports numbers for each target (and that rpcs and queued messages
// were answered, none failing: a correctness count, not a benchmark number).
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = mkdtempSync(path.join(tmpdir(), 'authsocket-bench-'));
const out = path.join(dir, 'smoke.json');

interface Result {
  scenarios: Array<{ name: string; targets: string[] }>;
  medians: Record<string, Record<string, Record<string, number>>>;
}

describe('bench --smoke', () => {
  beforeAll(() => {
    execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-b', 'bench'], {
      cwd: root,
      stdio: 'inherit',
    });
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs every scenario against raw ws, authsocket and Socket.IO and reports numbers for each', () => {
    execFileSync(process.execPath, [path.join(root, 'bench/dist/run.js'), '--smoke', '--out', out], {
      cwd: root,
      stdio: ['ignore', 'ignore', 'inherit'],
      // ~110 s on a loaded 2-core machine: every scenario, every target, a process each.
      timeout: 170_000,
    });
    const result = JSON.parse(readFileSync(out, 'utf8')) as Result;
    const names = result.scenarios.map((scenario) => scenario.name);
    expect(names).toEqual(['connect', 'idle', 'broadcast', 'topic', 'push', 'echo', 'churn', 'history', 'rpc', 'queue', 'publish-api']);
    for (const scenario of result.scenarios) {
      for (const target of scenario.targets) {
        const metrics = Object.values(result.medians[scenario.name]?.[target] ?? {});
        expect(metrics.length, `${scenario.name}/${target}`).toBeGreaterThan(0);
        expect(metrics.every((value) => Number.isFinite(value)), `${scenario.name}/${target}`).toBe(true);
      }
    }
    const targets = new Set(result.scenarios.flatMap((scenario) => scenario.targets));
    for (const target of ['ws', 'authsocket', 'socketio']) expect(targets).toContain(target);
    // Node's floor beside the fan-outs, delivering every frame like the servers, with the kernel's part shown.
    for (const name of ['broadcast', 'topic', 'push']) {
      expect(result.scenarios.find((scenario) => scenario.name === name)?.targets, name).toContain('ws-floor');
      expect(result.medians[name]?.['ws-floor']?.lost, `${name}/ws-floor`).toBe(0);
      for (const target of ['ws', 'ws-floor', 'authsocket', 'socketio']) {
        expect(result.medians[name]?.[target], `${name}/${target}`).toHaveProperty(name === 'push' ? 'sys_us/push' : 'sys_us/delivery');
      }
    }
    const rpc = result.scenarios.find((scenario) => scenario.name === 'rpc');
    expect(rpc?.targets).toEqual(['ws', 'authsocket', 'authsocket-proxy', 'socketio']);
    for (const target of rpc?.targets ?? []) {
      const metrics = result.medians.rpc?.[target] ?? {};
      expect(metrics['rpc/s'], `rpc/${target}`).toBeGreaterThan(0);
      expect(metrics.errors, `rpc/${target}`).toBe(0);
    }
    // The proxy's rpcs went to the backend process, whose CPU is counted beside the gateway's.
    expect(result.medians.rpc?.['authsocket-proxy']?.['backend_cpu_us/rpc']).toBeGreaterThan(0);
    // The queue path: every message acked and answered (by the worker processes for queue-*).
    const queue = result.scenarios.find((scenario) => scenario.name === 'queue');
    expect(queue?.targets).toEqual(['authsocket', 'authsocket-redis', 'queue-1', 'queue-3']);
    for (const target of queue?.targets ?? []) {
      const metrics = result.medians.queue?.[target] ?? {};
      expect(metrics['msg/s'], `queue/${target}`).toBeGreaterThan(0);
      expect(metrics.errors, `queue/${target}`).toBe(0);
    }
    for (const target of ['queue-1', 'queue-3']) {
      expect(result.medians.queue?.[target]?.['worker_cpu_us/msg'], `queue/${target}`).toBeGreaterThan(0);
    }
    // The gateway's HTTP API: publishes and batched messages answered, each delivered to the topic's subscribers.
    const api = result.medians['publish-api']?.gateway ?? {};
    expect(api['publish/s']).toBeGreaterThan(0);
    expect(api['batch_msg/s']).toBeGreaterThan(0);
    expect(api.deliveries).toBeGreaterThan(0);
    expect(api.errors).toBe(0);
  }, 180_000);
});
