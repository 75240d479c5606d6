import { describe, expect, it } from 'vitest';
import { ConfigError } from '../src/errors.js';
import { claimTopics, MalformedClaim, type PermissionRule, Permissions } from '../src/permissions.js';

/** The permissions module on its own: rule forms, `{claim}` substitution, wildcard placement, claims of patterns. */

describe('rules', () => {
  const permissions = new Permissions(
    [
      { topics: 'user:{sub}:*', allow: ['subscribe', 'presence'] },
      { topics: ['news', 'chat:*'], allow: ['subscribe'] },
      { topics: 'chat:*', allow: ['publish'], when: { role: 'admin' } },
      { topics: 'org:{org}:board', allow: ['subscribe'], when: { verified: true } },
    ],
    undefined,
  );

  it('allows an exact topic and a prefix pattern, only for the actions the rule names', () => {
    const claims = { sub: 'alice' };
    expect(permissions.check(claims, 'subscribe', 'news')).toBe(true);
    expect(permissions.check(claims, 'subscribe', 'news:extra')).toBe(false);
    expect(permissions.check(claims, 'subscribe', 'chat:general')).toBe(true);
    expect(permissions.check(claims, 'publish', 'chat:general')).toBe(false);
    expect(permissions.check(claims, 'presence', 'chat:general')).toBe(false);
    expect(permissions.check(claims, 'subscribe', 'other')).toBe(false);
  });

  it('substitutes {sub}: each user reaches only their own topics', () => {
    expect(permissions.check({ sub: 'alice' }, 'subscribe', 'user:alice:inbox')).toBe(true);
    expect(permissions.check({ sub: 'alice' }, 'presence', 'user:alice:inbox')).toBe(true);
    expect(permissions.check({ sub: 'alice' }, 'subscribe', 'user:bob:inbox')).toBe(false);
    expect(permissions.check({ sub: 'bob' }, 'subscribe', 'user:alice:inbox')).toBe(false);
  });

  it('matches no topic when the substituted claim is missing, empty, not a string or number, or holds a separator or wildcard', () => {
    for (const sub of [undefined, '', 'a:b', 'a*', 'a/b', 'a#b', '{x}', ['alice'], { id: 1 }, true, 1.5]) {
      expect(permissions.check({ sub } as never, 'subscribe', 'user:a:b:inbox'), String(sub)).toBe(false);
      expect(permissions.check({ sub } as never, 'subscribe', `user:${String(sub)}:inbox`), String(sub)).toBe(false);
    }
    expect(permissions.check({ sub: 'x', org: 42, verified: true }, 'subscribe', 'org:42:board')).toBe(true);
  });

  it('bounds a substituted value by the separator after it: with `user.{sub}.*`, a sub holding a dot reaches no one else', () => {
    const dotted = new Permissions([{ topics: 'user.{sub}.*', allow: ['subscribe'] }], undefined);
    expect(dotted.check({ sub: 'alice' }, 'subscribe', 'user.alice.inbox')).toBe(true);
    expect(dotted.check({ sub: 'alice.inbox' }, 'subscribe', 'user.alice.inbox.x')).toBe(false);
    expect(dotted.check({ sub: 'bob' }, 'subscribe', 'user.alice.inbox')).toBe(false);
  });

  it('applies a rule with `when` only to tokens whose claims hold the values (an array claim must include it)', () => {
    expect(permissions.check({ sub: 'a', role: 'admin' }, 'publish', 'chat:general')).toBe(true);
    expect(permissions.check({ sub: 'a', role: ['user', 'admin'] }, 'publish', 'chat:general')).toBe(true);
    expect(permissions.check({ sub: 'a', role: 'user' }, 'publish', 'chat:general')).toBe(false);
    expect(permissions.check({ sub: 'a' }, 'publish', 'chat:general')).toBe(false);
    expect(permissions.check({ sub: 'a', org: 'acme', verified: 'true' }, 'subscribe', 'org:acme:board')).toBe(false);
  });
});

describe('rules refused at start', () => {
  const cases: Array<[string, unknown, string]> = [
    ['a wildcard inside a pattern', [{ topics: 'a*b', allow: ['subscribe'] }], "invalid option 'permissions[0].topics': pattern 'a*b' has '*' before its end"],
    ['a leading wildcard', [{ topics: ['ok', '*x'], allow: ['subscribe'] }], "invalid option 'permissions[0].topics[1]': pattern '*x' has '*' before its end"],
    ['two wildcards', [{ topics: 'a', allow: ['publish'] }, { topics: 'a**', allow: ['publish'] }], "invalid option 'permissions[1].topics'"],
    ['an empty pattern', [{ topics: '', allow: ['subscribe'] }], "invalid option 'permissions[0].topics': expected a non-empty topic pattern"],
    ['a malformed placeholder', [{ topics: 'user:{}:x', allow: ['subscribe'] }], 'has a malformed placeholder'],
    ['an unclosed placeholder', [{ topics: 'user:{sub', allow: ['subscribe'] }], 'has a malformed placeholder'],
    ['a stray brace', [{ topics: 'user:}', allow: ['subscribe'] }], "has a '}' without '{'"],
    ['a placeholder right before the wildcard', [{ topics: 'user:{sub}*', allow: ['subscribe'] }], "has {sub} followed by '*': put a separator after it"],
    ['two placeholders side by side', [{ topics: 'org:{org}{sub}:x', allow: ['subscribe'] }], 'has {org} followed by another placeholder'],
    ['an unknown action', [{ topics: 'a', allow: ['read'] }], "invalid option 'permissions[0].allow': expected 'subscribe', 'publish' or 'presence', got 'read'"],
    ['no actions', [{ topics: 'a', allow: [] }], "invalid option 'permissions[0].allow'"],
    ['no topics', [{ topics: [], allow: ['subscribe'] }], "invalid option 'permissions[0].topics'"],
    ['a `when` value that is an object', [{ topics: 'a', allow: ['subscribe'], when: { role: {} } }], "invalid option 'permissions[0].when.role'"],
    ['a rule that is not an object', ['chat:*'], "invalid option 'permissions[0]'"],
    ['rules that are not an array', { topics: 'a', allow: ['subscribe'] }, "invalid option 'permissions': expected an array"],
  ];
  for (const [what, rules, message] of cases) {
    it(`refuses ${what} with a ConfigError naming the rule`, () => {
      let thrown: unknown;
      try {
        new Permissions(rules as PermissionRule[], undefined);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(ConfigError);
      expect((thrown as Error).message).toContain(message);
    });
  }
});

describe('a claim of patterns', () => {
  const permissions = new Permissions(undefined, 'topics');

  it('as an array, allows subscribe and presence on its patterns, never publish', () => {
    const claims = { sub: 'alice', topics: ['room:1', 'team:*'] };
    expect(permissions.check(claims, 'subscribe', 'room:1')).toBe(true);
    expect(permissions.check(claims, 'presence', 'team:blue')).toBe(true);
    expect(permissions.check(claims, 'publish', 'room:1')).toBe(false);
    expect(permissions.check(claims, 'subscribe', 'room:2')).toBe(false);
  });

  it('as an object, allows each action on its own patterns', () => {
    const claims = { sub: 'alice', topics: { subscribe: ['a:*'], publish: ['a:out'] } };
    expect(permissions.check(claims, 'subscribe', 'a:in')).toBe(true);
    expect(permissions.check(claims, 'publish', 'a:out')).toBe(true);
    expect(permissions.check(claims, 'publish', 'a:in')).toBe(false);
    expect(permissions.check(claims, 'presence', 'a:in')).toBe(false);
  });

  it('takes claim patterns literally: a placeholder in a token is not substituted', () => {
    expect(permissions.check({ sub: 'alice', topics: ['user:{sub}'] }, 'subscribe', 'user:alice')).toBe(false);
    expect(permissions.check({ sub: 'alice', topics: ['user:{sub}'] }, 'subscribe', 'user:{sub}')).toBe(true);
  });

  it('denies without the claim, and answers a malformed claim with a message naming it', () => {
    expect(permissions.check({ sub: 'alice' }, 'subscribe', 'room:1')).toBe(false);
    const cases: Array<[unknown, string]> = [
      ['room:*', "claim 'topics' is malformed: expected an array of patterns or { subscribe, publish, presence }, got 'room:*'"],
      [42, "claim 'topics' is malformed: expected an array of patterns or { subscribe, publish, presence }, got number 42"],
      [['a*b'], "claim 'topics' is malformed: pattern 'a*b' has '*' before its end"],
      [[7], "claim 'topics' is malformed: expected a non-empty topic pattern, got number 7"],
      [{ subscribe: 'a' }, "claim 'topics' is malformed: subscribe: expected an array of topic patterns, got 'a'"],
      [{ read: ['a'] }, "claim 'topics' is malformed: unknown action 'read'"],
      [{ publish: ['*x'] }, "claim 'topics' is malformed: publish: pattern '*x' has '*' before its end"],
    ];
    for (const [value, message] of cases) {
      const answer = permissions.check({ sub: 'alice', topics: value } as never, 'subscribe', 'room:1');
      expect(answer, JSON.stringify(value)).toBeInstanceOf(MalformedClaim);
      expect((answer as MalformedClaim).message).toContain(message);
    }
  });

  it('combines with rules: either may allow', () => {
    const both = new Permissions([{ topics: 'public:*', allow: ['subscribe'] }], 'topics');
    expect(both.check({ sub: 'a' }, 'subscribe', 'public:x')).toBe(true);
    expect(both.check({ sub: 'a', topics: ['private:1'] }, 'subscribe', 'private:1')).toBe(true);
    expect(both.check({ sub: 'a', topics: ['private:1'] }, 'subscribe', 'private:2')).toBe(false);
  });
});

describe('claimTopics', () => {
  it('reads an array of topics, none without the claim, and refuses anything else naming the claim', () => {
    expect(claimTopics('channels', ['a', 'b'], 256)).toEqual(['a', 'b']);
    expect(claimTopics('channels', undefined, 256)).toEqual([]);
    for (const value of ['a', [1], [''], ['a*'], ['x'.repeat(257)], { a: 1 }]) {
      const answer = claimTopics('channels', value, 256);
      expect(answer).toBeInstanceOf(MalformedClaim);
      expect((answer as MalformedClaim).message).toMatch(/^claim 'channels' is malformed: expected an array of topics/);
    }
  });
});
