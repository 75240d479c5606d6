import { ConfigError } from '@authsocket/server';

/** Where the engine finds Redis: one server by URL, a Redis Cluster by seed nodes, or a Sentinel set. */
export type RedisTarget =
  | string
  | { readonly cluster: readonly string[] }
  | { readonly sentinels: readonly string[]; readonly name: string };

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** A target checked and taken apart; every way it can be wrong is a `ConfigError` naming the field. */
export type ParsedTarget =
  | { readonly kind: 'standalone'; readonly url: string }
  | { readonly kind: 'cluster'; readonly nodes: readonly HostPort[] }
  | { readonly kind: 'sentinel'; readonly sentinels: readonly HostPort[]; readonly name: string };

/** `host:port` (or `[v6]:port`) to its parts. */
export function parseHostPort(option: string, text: unknown): HostPort {
  const match = typeof text === 'string' ? /^(?:\[([^\]]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text) : null;
  const port = match ? Number(match[3]) : 0;
  if (!match || port < 1 || port > 65_535) {
    throw new ConfigError(option, `expected 'host:port', got ${JSON.stringify(text)}`);
  }
  return { host: (match[1] ?? match[2]) as string, port };
}

function nodeList(option: string, list: unknown): HostPort[] {
  if (!Array.isArray(list) || list.length === 0) throw new ConfigError(option, "expected a non-empty list of 'host:port'");
  return list.map((entry: unknown, index) => parseHostPort(`${option}[${index}]`, entry));
}

export function parseTarget(target: unknown): ParsedTarget {
  if (typeof target === 'string') {
    if (!/^rediss?:\/\//i.test(target)) throw new ConfigError('url', "expected a 'redis://' or 'rediss://' URL");
    return { kind: 'standalone', url: target };
  }
  if (typeof target === 'object' && target !== null) {
    const fields = target as Record<string, unknown>;
    if ('cluster' in fields && 'sentinels' in fields) {
      throw new ConfigError('target', "give either 'cluster' or 'sentinels', not both");
    }
    if ('cluster' in fields) return { kind: 'cluster', nodes: nodeList('cluster', fields.cluster) };
    if ('sentinels' in fields) {
      const sentinels = nodeList('sentinels', fields.sentinels);
      if (typeof fields.name !== 'string' || fields.name === '') {
        throw new ConfigError('name', 'expected the name of the master the sentinels monitor');
      }
      return { kind: 'sentinel', sentinels, name: fields.name };
    }
  }
  throw new ConfigError('target', "expected a 'redis://' URL, { cluster: ['host:port', ...] } or { sentinels: ['host:port', ...], name }");
}
