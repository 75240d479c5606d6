import { readFileSync, statSync } from 'node:fs';
import { ConfigError, type PermissionRule, Permissions, type TopicAction } from '@authsocket/server';

/**
 * A raw option value that does not parse. The message completes "invalid option --x (ENV): ..."
 * and never repeats a secret value.
 */
export class ValueError extends Error {
  override readonly name = 'ValueError';
}

/** Parses one raw string (from a flag or an environment variable) into an option's value. */
export type Parser<T> = (raw: string) => T;

const quote = (raw: string): string => JSON.stringify(raw.length > 80 ? `${raw.slice(0, 80)}...` : raw);

const DURATION = /^(\d{1,9})(ms|s|m|h)$/;
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
/** Node timers overflow past 2^31-1 ms; a day is far beyond any sensible TTL or window. */
const MAX_DURATION_MS = 86_400_000;

/** `500ms`, `30s`, `2m`, `1h` (or `0`) to milliseconds. */
export function duration({ min = 0, max = MAX_DURATION_MS }: { min?: number; max?: number } = {}): Parser<number> {
  return (raw) => {
    const match = DURATION.exec(raw);
    const ms = raw === '0' ? 0 : match ? Number(match[1]) * (UNIT_MS[match[2] as string] as number) : undefined;
    if (ms === undefined) throw new ValueError(`expected a duration like 30s, got ${quote(raw)}`);
    if (ms < min) throw new ValueError(`expected a duration of at least ${formatDuration(min)}, got ${quote(raw)}`);
    if (ms > max) throw new ValueError(`expected a duration of at most ${formatDuration(max)}, got ${quote(raw)}`);
    return ms;
  };
}

/** Like `duration`, for options the library takes in seconds: `5s`, `1500ms`. */
export function seconds(options: { min?: number; max?: number } = {}): Parser<number> {
  const ms = duration(options);
  return (raw) => ms(raw) / 1_000;
}

const SIZE = /^(\d{1,10})(|b|kib|mib)$/i;
const UNIT_BYTES: Readonly<Record<string, number>> = { '': 1, b: 1, kib: 1_024, mib: 1_048_576 };

/** `65536`, `64KiB`, `1MiB`: a positive number of bytes, at most 1 GiB. */
export const bytes: Parser<number> = (raw) => {
  const match = SIZE.exec(raw.trim());
  const value = match ? Number(match[1]) * (UNIT_BYTES[(match[2] as string).toLowerCase()] as number) : NaN;
  if (!(value >= 1 && value <= 1_073_741_824)) throw new ValueError(`expected a size like 65536, 64KiB or 1MiB (at most 1024MiB), got ${quote(raw)}`);
  return value;
};

/** `1024B`-style label of a byte count, as `bytes` parses it back. */
export function formatBytes(value: number): string {
  if (value % 1_048_576 === 0) return `${value / 1_048_576}MiB`;
  if (value % 1_024 === 0) return `${value / 1_024}KiB`;
  return String(value);
}

/** A whole number from 0 up to 2^31 - 1. */
export const nonNegativeInteger: Parser<number> = (raw) => {
  const value = /^\d{1,10}$/.test(raw) ? Number(raw) : NaN;
  if (!(value >= 0 && value <= 2_147_483_647)) throw new ValueError(`expected a whole number of at least 0, got ${quote(raw)}`);
  return value;
};

/** The shortest exact spelling of `ms` that `duration()` parses back. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0';
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1_000]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

export const port: Parser<number> = (raw) => {
  const value = /^\d{1,5}$/.test(raw) ? Number(raw) : NaN;
  if (!(value >= 0 && value <= 65_535)) throw new ValueError(`expected a port number from 0 to 65535, got ${quote(raw)}`);
  return value;
};

/** A whole number from 1 up to 2^31 - 1. */
export const positiveInteger: Parser<number> = (raw) => {
  const value = /^\d{1,10}$/.test(raw) ? Number(raw) : NaN;
  if (!(value >= 1 && value <= 2_147_483_647)) throw new ValueError(`expected a whole number of at least 1, got ${quote(raw)}`);
  return value;
};

export function oneOf<const T extends string>(values: readonly T[]): Parser<T> {
  return (raw) => {
    if (!(values as readonly string[]).includes(raw)) {
      throw new ValueError(`expected one of ${values.join(', ')}, got ${quote(raw)}`);
    }
    return raw as T;
  };
}

export const nonEmpty: Parser<string> = (raw) => {
  if (raw.trim() === '') throw new ValueError('expected a non-empty value');
  return raw;
};

/** For environment variables; on the command line a boolean is a bare flag. */
export const boolean: Parser<boolean> = (raw) => {
  const value = raw.toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(value)) return true;
  if (['0', 'false', 'no', 'off'].includes(value)) return false;
  throw new ValueError(`expected true or false, got ${quote(raw)}`);
};

/** A secret at least `minLength` long; its value never appears in a message. */
export function secret(minLength: number, unit: 'bytes' | 'characters'): Parser<string> {
  return (raw) => {
    const length = unit === 'bytes' ? Buffer.byteLength(raw) : raw.length;
    if (length < minLength) throw new ValueError(`expected at least ${minLength} ${unit}, got ${length}`);
    return raw;
  };
}

/** An absolute URL with one of `protocols`; with `hideValue` (credentials inside) it is never echoed. */
export function url(protocols: readonly string[], { hideValue = false } = {}): Parser<string> {
  const expected = `an absolute ${protocols.map((p) => `${p}//`).join(' or ')} URL`;
  return (raw) => {
    let parsed: URL | undefined;
    try {
      parsed = new URL(raw);
    } catch {
      parsed = undefined;
    }
    if (!parsed || !protocols.includes(parsed.protocol)) {
      throw new ValueError(hideValue ? `expected ${expected}` : `expected ${expected}, got ${quote(raw)}`);
    }
    return raw;
  };
}

/** `https://app.example.com,http://localhost:5173`: exact origins, as browsers send them. */
/** Comma-separated JWT claim names, e.g. `email,roles`. */
export const claimNames: Parser<string[]> = (raw) => {
  const list = raw.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  if (list.length === 0 || list.some((entry) => !/^[\w.:-]{1,64}$/.test(entry))) {
    throw new ValueError(`expected comma-separated claim names like email,roles, got ${quote(raw)}`);
  }
  return list;
};

/** One JWT claim name, e.g. `name`. */
export const claimName: Parser<string> = (raw) => {
  const trimmed = raw.trim();
  if (!/^[\w.:-]{1,64}$/.test(trimmed)) throw new ValueError(`expected a claim name like name, got ${quote(raw)}`);
  return trimmed;
};

/** `chat:*,lobby`: exact topic names, and prefixes ending in `*`. */
export const presenceTopics: Parser<string[]> = (raw) => {
  const list = raw.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  if (list.length === 0) throw new ValueError(`expected comma-separated topics or prefixes ending in * like chat:*,lobby, got ${quote(raw)}`);
  return list;
};

export const origins: Parser<string[]> = (raw) => {
  const list = raw.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  if (list.length === 0) throw new ValueError('expected a comma-separated list of origins like https://app.example.com');
  for (const entry of list) {
    if (originOf(entry) !== entry) {
      throw new ValueError(`expected origins like https://app.example.com (scheme, host, optional port), got ${quote(entry)}`);
    }
  }
  return list;
};

function originOf(entry: string): string | undefined {
  try {
    const parsed = new URL(entry);
    return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.origin : undefined;
  } catch {
    return undefined;
  }
}

const PEM_PUBLIC_KEY = /-----BEGIN PUBLIC KEY-----/;

/** A PEM public key given inline, or the path of a file holding one. Returns the PEM text. */
export const publicKey: Parser<string> = (raw) => {
  if (raw.trimStart().startsWith('-----BEGIN')) {
    if (!PEM_PUBLIC_KEY.test(raw)) throw new ValueError("expected a PEM public key ('-----BEGIN PUBLIC KEY-----')");
    return raw;
  }
  let text: string;
  try {
    text = readFileSync(raw, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ValueError(`expected a PEM public key or the path of a file holding one; cannot read ${quote(raw)} (${code})`);
  }
  if (!PEM_PUBLIC_KEY.test(text)) {
    throw new ValueError(`expected ${quote(raw)} to hold a PEM public key ('-----BEGIN PUBLIC KEY-----')`);
  }
  return text;
};

export const directory: Parser<string> = (raw) => {
  let isDirectory: boolean;
  try {
    isDirectory = statSync(raw).isDirectory();
  } catch {
    isDirectory = false;
  }
  if (!isDirectory) throw new ValueError(`expected an existing directory, got ${quote(raw)}`);
  return raw;
};

export const urlPath: Parser<string> = (raw) => {
  if (!/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/.test(raw)) throw new ValueError(`expected a path starting with /, got ${quote(raw)}`);
  return raw;
};

/**
 * `chat:,news:` or `*`: topic name prefixes. `*` alone allows every topic; `-` alone allows none.
 * Returned as a list of prefixes (`''` matches every topic).
 */
export const topicPrefixes: Parser<string[]> = (raw) => {
  const trimmed = raw.trim();
  if (trimmed === '*') return [''];
  if (trimmed === '-') return [];
  const list = trimmed.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  if (list.length === 0) throw new ValueError("expected '*', '-' or comma-separated topic prefixes like chat:,news:");
  return list;
};

/** A claim name, or `off`. */
export const claimNameOrOff: Parser<string | false> = (raw) => (raw.trim() === 'off' ? false : claimName(raw));

const RULE = /^([^=\s]+)=([a-z,]+)(?:\s+if\s+(.+))?$/;

/**
 * One `--permission`: `<pattern>=<action,...>[ if <claim>=<value>,...]`, e.g.
 * `chat:*=subscribe,publish if role=admin`; `when` values `true`/`false` and integers are JSON.
 */
export const permissionRule: Parser<PermissionRule[]> = (raw) => {
  const match = RULE.exec(raw.trim());
  if (!match) throw new ValueError(`expected a rule like 'chat:*=subscribe,publish' or 'admin:*=publish if role=admin', got ${quote(raw)}`);
  const [, topics, actions, condition] = match as unknown as [string, string, string, string | undefined];
  const when: Record<string, string | number | boolean> = {};
  for (const part of condition?.split(',') ?? []) {
    const [claim, value, extra] = part.trim().split('=');
    if (!claim || value === undefined || value === '' || extra !== undefined) {
      throw new ValueError(`expected conditions like 'if role=admin,verified=true', got ${quote(raw)}`);
    }
    when[claim] = value === 'true' ? true : value === 'false' ? false : /^-?\d{1,15}$/.test(value) ? Number(value) : value;
  }
  const rule: PermissionRule = { topics, allow: actions.split(',') as TopicAction[], ...(condition ? { when } : {}) };
  try {
    new Permissions([rule], undefined);
  } catch (error) {
    // The library names the rule by index; here the flag is what is named, so only the detail is kept.
    if (error instanceof ConfigError) throw new ValueError(`${error.message.slice(error.message.indexOf(': ') + 2)} in ${quote(raw)}`);
    throw error;
  }
  return [rule];
};

/** `300/10s` (attempts per window) or `off`. */
export const rateLimit: Parser<{ limit: number; windowMs: number } | false> = (raw) => {
  if (raw.trim() === 'off') return false;
  const match = /^(\d{1,9})\/(.+)$/.exec(raw.trim());
  const limit = Number(match?.[1]);
  if (!match || !(limit >= 1)) throw new ValueError(`expected a rate like 300/10s, or off, got ${quote(raw)}`);
  return { limit, windowMs: duration({ min: 1 })(match[2] as string) };
};

/** `1000/1s` (frames per window); a limit that cannot be turned off. */
export const rate: Parser<{ limit: number; windowMs: number }> = (raw) => {
  const match = /^(\d{1,9})\/(.+)$/.exec(raw.trim());
  const limit = Number(match?.[1]);
  if (!match || !(limit >= 1)) throw new ValueError(`expected a rate like 1000/1s, got ${quote(raw)}`);
  return { limit, windowMs: duration({ min: 1 })(match[2] as string) };
};

/** `1000/5m` (entries per stream / their age) or `off` (no history). */
export const history: Parser<{ maxEntries: number; maxAgeMs: number } | false> = (raw) => {
  if (raw.trim() === 'off') return false;
  const match = /^(\d{1,9})\/(.+)$/.exec(raw.trim());
  const maxEntries = Number(match?.[1]);
  if (!match || !(maxEntries >= 1)) throw new ValueError(`expected entries/age like 1000/5m, or off, got ${quote(raw)}`);
  return { maxEntries, maxAgeMs: duration({ min: 1 })(match[2] as string) };
};

/** `RS256,ES256`: JWS algorithm names (the server library checks they fit the key). */
export const algorithms: Parser<string[]> = (raw) => {
  const list = raw.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  if (list.length === 0 || list.some((entry) => !/^[A-Za-z][A-Za-z0-9]{1,15}$/.test(entry))) {
    throw new ValueError(`expected comma-separated JWS algorithms like RS256,ES256, got ${quote(raw)}`);
  }
  if (list.some((entry) => entry.toLowerCase() === 'none')) throw new ValueError("'none' is never allowed");
  return list;
};

/** A Redis key prefix: visible characters, no `{` or `}` (they would pin every key to one Cluster slot). */
export const keyPrefix: Parser<string> = (raw) => {
  if (!/^[\x21-\x7e]{1,64}$/.test(raw) || /[{}]/.test(raw)) {
    throw new ValueError(`expected 1-64 visible characters without { or }, like authsocket:, got ${quote(raw)}`);
  }
  return raw;
};

const HOST_PORT = /^(?:\[[^\]]+\]|[^:[\]\s]+):(\d{1,5})$/;

/** `10.0.0.1:7000,[::1]:7001`: Redis nodes, as the engine's targets take them. */
export const hostPorts: Parser<string[]> = (raw) => {
  const list = raw.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  if (list.length === 0) throw new ValueError('expected comma-separated host:port pairs like 10.0.0.1:7000,10.0.0.2:7000');
  for (const entry of list) {
    const port = Number(HOST_PORT.exec(entry)?.[1] ?? 0);
    if (!(port >= 1 && port <= 65_535)) throw new ValueError(`expected host:port pairs like 10.0.0.1:7000, got ${quote(entry)}`);
  }
  return list;
};

/**
 * `2` (hops) or `10.0.0.0/8,192.0.2.7` (proxy addresses). Only the shape is read here: the server
 * library checks hop counts and addresses, and its refusal is reported under this flag.
 */
export const trustProxy: Parser<number | string[]> = (raw) => {
  const trimmed = raw.trim();
  if (/^\d{1,9}$/.test(trimmed)) return Number(trimmed);
  const list = trimmed.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  if (list.length === 0) throw new ValueError('expected a number of hops, or comma-separated proxy addresses/CIDRs like 10.0.0.0/8');
  return list;
};
