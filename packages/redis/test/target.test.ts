import { ConfigError } from '@authsocket/server';
import { describe, expect, it } from 'vitest';
import { createRedisEngine } from '../src/index.js';
import { parseTarget } from '../src/target.js';

describe('Redis engine target', () => {
  it('takes a URL, Cluster seeds or a Sentinel set apart', () => {
    expect(parseTarget('rediss://user:pw@redis.example:6380/2')).toEqual({
      kind: 'standalone',
      url: 'rediss://user:pw@redis.example:6380/2',
    });
    expect(parseTarget({ cluster: ['10.0.0.1:7000', '[::1]:7001', 'redis-2.internal:7002'] })).toEqual({
      kind: 'cluster',
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '::1', port: 7001 },
        { host: 'redis-2.internal', port: 7002 },
      ],
    });
    expect(parseTarget({ sentinels: ['s1:26379', 's2:26379'], name: 'mymaster' })).toEqual({
      kind: 'sentinel',
      sentinels: [
        { host: 's1', port: 26_379 },
        { host: 's2', port: 26_379 },
      ],
      name: 'mymaster',
    });
  });

  const bad: [string, unknown, string, string][] = [
    ['a URL of another scheme', 'http://127.0.0.1:6379', 'url', "expected a 'redis://' or 'rediss://' URL"],
    ['an empty seed list', { cluster: [] }, 'cluster', "expected a non-empty list of 'host:port'"],
    ['a seed without a port', { cluster: ['127.0.0.1'] }, 'cluster[0]', `expected 'host:port', got "127.0.0.1"`],
    ['a port out of range', { cluster: ['a:1', 'b:70000'] }, 'cluster[1]', `expected 'host:port', got "b:70000"`],
    ['a seed that is not a string', { cluster: [7000] }, 'cluster[0]', "expected 'host:port', got 7000"],
    ['sentinels without a name', { sentinels: ['s:26379'] }, 'name', 'expected the name of the master the sentinels monitor'],
    ['an empty master name', { sentinels: ['s:26379'], name: '' }, 'name', 'expected the name of the master the sentinels monitor'],
    ['both cluster and sentinels', { cluster: ['a:1'], sentinels: ['s:2'], name: 'm' }, 'target', "give either 'cluster' or 'sentinels', not both"],
    ['something else', 42, 'target', "expected a 'redis://' URL, { cluster: ['host:port', ...] } or { sentinels: ['host:port', ...], name }"],
  ];
  for (const [what, target, option, message] of bad) {
    it(`refuses ${what} with a ConfigError naming '${option}'`, () => {
      const attempt = () => createRedisEngine(target as never);
      expect(attempt).toThrow(ConfigError);
      expect(attempt).toThrow(`invalid option '${option}': ${message}`);
    });
  }

  it('refuses liveness and idempotency options that are not positive integers', () => {
    for (const option of ['livenessIntervalMs', 'livenessTimeoutMs', 'idempotencyWindowMs'] as const) {
      expect(() => createRedisEngine('redis://127.0.0.1:1', { [option]: 0 })).toThrow(`invalid option '${option}'`);
    }
    expect(() => createRedisEngine('redis://127.0.0.1:1', { nodeId: '' })).toThrow("invalid option 'nodeId'");
  });
});
