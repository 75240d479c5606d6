import type { JWTPayload } from 'jose';
import { ConfigError } from './errors.js';

/** What a connection may do on a topic: join it, publish on it, or read who else is there. */
export type TopicAction = 'subscribe' | 'publish' | 'presence';

export const TOPIC_ACTIONS: readonly TopicAction[] = ['subscribe', 'publish', 'presence'];

/**
 * One operator rule: the topics it covers, what it allows there, and (optionally) which tokens it
 * applies to. A pattern is a topic, or a prefix ending in `*`; `{claim}` stands for that claim of
 * the connection's token (`user:{sub}:*`). `when`: every named claim equals the value (or, when the
 * claim is an array, holds it).
 */
export interface PermissionRule {
  readonly topics: string | readonly string[];
  readonly allow: readonly TopicAction[];
  readonly when?: Readonly<Record<string, string | number | boolean>>;
}

/**
 * A claim's value may name anything of a topic but its structure: these separate a topic's parts,
 * and `*` is the wildcard. A value holding one would let a token's `sub` reach into other topics.
 */
const UNSAFE_IN_VALUE = /[*:/#{}]/;

/** A pattern compiled once: literal pieces between `{claim}` placeholders, maybe a trailing `*`. */
interface Pattern {
  /** Even indexes: literal text; odd indexes: claim names. */
  readonly pieces: readonly string[];
  readonly prefix: boolean;
}

interface CompiledRule {
  readonly patterns: readonly Pattern[];
  /** One bit per action (`ACTION_BIT`). */
  readonly actions: number;
  readonly when: ReadonlyArray<readonly [string, string | number | boolean]>;
}

const ACTION_BIT: Readonly<Record<TopicAction, number>> = { subscribe: 1, publish: 2, presence: 4 };

/** Why a claim of patterns cannot be used: the request it was asked about is refused with this. */
export class MalformedClaim {
  /** Logged once per token (the answer is kept with its claims), not once per request. */
  reported = false;

  constructor(readonly message: string) {}
}

/** A claim's patterns, compiled once per token's claims (a `WeakMap` keyed by the claims object). */
interface ClaimGrant {
  /** Per action bit: the patterns allowing it. */
  readonly subscribe: readonly Pattern[];
  readonly publish: readonly Pattern[];
  readonly presence: readonly Pattern[];
}

/** Thrown while compiling: a message without the pattern's owner, which the caller names. */
class PatternError extends Error {}

/** `*` only as the last character; `{claim}` placeholders only in operator rules. */
function compilePattern(text: unknown, placeholders: boolean): Pattern {
  if (typeof text !== 'string' || text.length === 0) throw new PatternError(`expected a non-empty topic pattern, got ${describe(text)}`);
  const star = text.indexOf('*');
  if (star !== -1 && star !== text.length - 1) {
    throw new PatternError(`pattern '${clip(text)}' has '*' before its end: a wildcard may only end a pattern`);
  }
  const body = star === -1 ? text : text.slice(0, -1);
  const pieces: string[] = [];
  if (!placeholders) {
    pieces.push(body);
  } else {
    let at = 0;
    for (;;) {
      const open = body.indexOf('{', at);
      if (open === -1) break;
      const close = body.indexOf('}', open);
      const name = close === -1 ? '' : body.slice(open + 1, close);
      if (!/^[\w.:-]{1,64}$/.test(name)) throw new PatternError(`pattern '${clip(text)}' has a malformed placeholder: expected {claim}`);
      pieces.push(body.slice(at, open), name);
      at = close + 1;
    }
    if (body.indexOf('}', at) !== -1) throw new PatternError(`pattern '${clip(text)}' has a '}' without '{'`);
    pieces.push(body.slice(at));
    // A value is bounded by the literal after it: `{sub}*` or `{a}{b}` would let `sub: 'al'` reach
    // `alice`'s topics (or split one value over two claims).
    for (let i = 1; i < pieces.length; i += 2) {
      const next = pieces[i + 1] as string;
      const last = i + 1 === pieces.length - 1;
      if (next === '' && (!last || star !== -1)) {
        throw new PatternError(`pattern '${clip(text)}' has {${pieces[i] as string}} followed by ${last ? "'*'" : 'another placeholder'}: put a separator after it`);
      }
    }
  }
  return { pieces, prefix: star !== -1 };
}

/** Whether `topic` matches `pattern` with `claims` substituted, without allocating for string claims. */
function matches(pattern: Pattern, topic: string, claims: JWTPayload): boolean {
  const { pieces } = pattern;
  let at = 0;
  for (let i = 0; i < pieces.length; i += 1) {
    let piece = pieces[i] as string;
    if (i % 2 === 1) {
      const value = claims[piece];
      if (typeof value === 'number' && Number.isSafeInteger(value)) piece = String(value);
      else if (typeof value === 'string' && value.length > 0 && !UNSAFE_IN_VALUE.test(value)) piece = value;
      else return false;
      // Nor the separator that ends it here: with `user.{sub}.*`, `sub: 'alice.inbox'` is not alice's.
      const separator = (pieces[i + 1] as string)[0];
      if (separator !== undefined && piece.includes(separator)) return false;
    }
    if (!topic.startsWith(piece, at)) return false;
    at += piece.length;
  }
  return pattern.prefix || at === topic.length;
}

function anyMatches(patterns: readonly Pattern[], topic: string, claims: JWTPayload): boolean {
  for (const pattern of patterns) if (matches(pattern, topic, claims)) return true;
  return false;
}

function holds(claims: JWTPayload, name: string, expected: string | number | boolean): boolean {
  const value = claims[name];
  return Array.isArray(value) ? value.includes(expected) : value === expected;
}

/**
 * The operator's permissions, compiled once at start: `permissions` rules and the claim that
 * carries a token's own patterns. `check` answers per request without allocating (a claim's
 * patterns are compiled once per token and kept with its claims object).
 */
export class Permissions {
  readonly #rules: readonly CompiledRule[];
  readonly #claim: string | undefined;
  readonly #grants = new WeakMap<JWTPayload, ClaimGrant | MalformedClaim>();

  /** Throws `ConfigError` naming the rule (`permissions[1].topics[0]`) for a rule it cannot use. */
  constructor(rules: readonly PermissionRule[] | undefined, claim: string | undefined) {
    if (rules !== undefined && !Array.isArray(rules)) throw new ConfigError('permissions', 'expected an array of { topics, allow, when? }');
    this.#rules = (rules ?? []).map(compileRule);
    this.#claim = claim;
  }

  /** True when neither rules nor a claim are configured: the `authorize` callback decides alone. */
  get empty(): boolean {
    return this.#rules.length === 0 && this.#claim === undefined;
  }

  /** Allowed, not allowed, or the claim of patterns is malformed (the request is refused with its message). */
  check(claims: JWTPayload, action: TopicAction, topic: string): boolean | MalformedClaim {
    const bit = ACTION_BIT[action];
    for (const rule of this.#rules) {
      if ((rule.actions & bit) === 0 || !applies(rule, claims)) continue;
      if (anyMatches(rule.patterns, topic, claims)) return true;
    }
    if (this.#claim === undefined || claims[this.#claim] === undefined) return false;
    const grant = this.#grantOf(claims, this.#claim);
    if (grant instanceof MalformedClaim) return grant;
    return anyMatches(grant[action], topic, claims);
  }

  #grantOf(claims: JWTPayload, name: string): ClaimGrant | MalformedClaim {
    let grant = this.#grants.get(claims);
    if (grant === undefined) {
      grant = compileClaim(name, claims[name]);
      this.#grants.set(claims, grant);
    }
    return grant;
  }
}

function applies(rule: CompiledRule, claims: JWTPayload): boolean {
  for (const [name, expected] of rule.when) if (!holds(claims, name, expected)) return false;
  return true;
}

function compileRule(rule: PermissionRule, index: number): CompiledRule {
  const name = `permissions[${index}]`;
  if (rule === null || typeof rule !== 'object') throw new ConfigError(name, 'expected { topics, allow, when? }');
  const topics = typeof rule.topics === 'string' ? [rule.topics] : rule.topics;
  if (!Array.isArray(topics) || topics.length === 0) throw new ConfigError(`${name}.topics`, 'expected a pattern or a non-empty array of patterns');
  const patterns = topics.map((text: unknown, i) => {
    try {
      return compilePattern(text, true);
    } catch (error) {
      if (error instanceof PatternError) throw new ConfigError(typeof rule.topics === 'string' ? `${name}.topics` : `${name}.topics[${i}]`, error.message);
      throw error;
    }
  });
  if (!Array.isArray(rule.allow) || rule.allow.length === 0) {
    throw new ConfigError(`${name}.allow`, "expected a non-empty array of 'subscribe', 'publish', 'presence'");
  }
  let actions = 0;
  for (const action of rule.allow) {
    const bit = ACTION_BIT[action as TopicAction];
    if (bit === undefined) throw new ConfigError(`${name}.allow`, `expected 'subscribe', 'publish' or 'presence', got ${describe(action)}`);
    actions |= bit;
  }
  const when = Object.entries(rule.when ?? {});
  for (const [claim, value] of when) {
    if (!['string', 'number', 'boolean'].includes(typeof value)) {
      throw new ConfigError(`${name}.when.${claim}`, `expected a string, number or boolean, got ${describe(value)}`);
    }
  }
  return { patterns, actions, when };
}

/**
 * A token's claim of patterns: an array (patterns to read: subscribe and presence), or an object
 * `{ subscribe?, publish?, presence? }` of arrays. Claim patterns are literal (no placeholders):
 * the issuer writes the user's topics out.
 */
function compileClaim(name: string, value: unknown): ClaimGrant | MalformedClaim {
  const malformed = (detail: string) => new MalformedClaim(`claim '${name}' is malformed: ${detail}`);
  const list = (item: unknown, key: string): Pattern[] | MalformedClaim => {
    if (item === undefined) return [];
    if (!Array.isArray(item)) return malformed(`${key}expected an array of topic patterns, got ${describe(item)}`);
    const patterns: Pattern[] = [];
    for (const text of item) {
      try {
        patterns.push(compilePattern(text, false));
      } catch (error) {
        if (error instanceof PatternError) return malformed(`${key}${error.message}`);
        throw error;
      }
    }
    return patterns;
  };
  if (Array.isArray(value)) {
    const read = list(value, '');
    return read instanceof MalformedClaim ? read : { subscribe: read, presence: read, publish: [] };
  }
  if (value === null || typeof value !== 'object') {
    return malformed(`expected an array of patterns or { subscribe, publish, presence }, got ${describe(value)}`);
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!(key in ACTION_BIT)) return malformed(`unknown action '${clip(key)}' (expected subscribe, publish, presence)`);
  }
  const grant: Partial<Record<TopicAction, Pattern[]>> = {};
  for (const action of TOPIC_ACTIONS) {
    const patterns = list(record[action], `${action}: `);
    if (patterns instanceof MalformedClaim) return patterns;
    grant[action] = patterns;
  }
  return grant as ClaimGrant;
}

/**
 * The topics a claim names for joining at connect (`subscribeClaim`): a list of topics, or the
 * refusal's message when the claim is not an array of non-empty strings without `*`.
 */
export function claimTopics(name: string, value: unknown, maxLength: number): readonly string[] | MalformedClaim {
  if (value === undefined) return [];
  const ok =
    Array.isArray(value) &&
    value.every((topic) => typeof topic === 'string' && topic.length > 0 && topic.length <= maxLength && !topic.includes('*'));
  return ok ? (value as string[]) : new MalformedClaim(`claim '${name}' is malformed: expected an array of topics (no '*'), got ${describe(value)}`);
}

function clip(text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}…` : text;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `'${clip(value)}'`;
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}
