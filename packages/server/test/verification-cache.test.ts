import { describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { ManualClock } from '../src/clock.js';
import { ConfigError, TokenError } from '../src/errors.js';
import { createTokenVerifier, type TokenVerifier, type VerifiedToken } from '../src/token-verifier.js';
import { createCachedVerifier } from '../src/verification-cache.js';

const START = Date.UTC(2030, 0, 1);
const SECRET = 'test-secret-that-is-long-enough-for-hs256';

/** Counts calls to the verifier it wraps, per token and in total. */
class CountingVerifier implements TokenVerifier {
  calls = 0;
  readonly perToken = new Map<string, number>();

  constructor(private readonly inner: TokenVerifier) {}

  verify(token: string): Promise<VerifiedToken> {
    this.calls++;
    this.perToken.set(token, (this.perToken.get(token) ?? 0) + 1);
    return this.inner.verify(token);
  }

  callsFor(token: string): number {
    return this.perToken.get(token) ?? 0;
  }
}

/** A fake inner verifier: the token `user@expiresAtMs` verifies; `bad...` is refused. */
const fake: TokenVerifier = {
  async verify(token) {
    const [user, expiresAt] = token.split('@');
    if (user === undefined || user.startsWith('bad') || expiresAt === undefined) throw new TokenError('signature');
    return { user, expiresAt: Number(expiresAt), claims: { sub: user } };
  },
};

const valid = (user: string, expiresAt = START + 3_600_000): string => `${user}@${expiresAt}`;

async function refusal(promise: Promise<unknown>): Promise<TokenError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof TokenError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

/** A verifier whose results the test settles by hand, to hold a verification in flight. */
class DeferredVerifier implements TokenVerifier {
  calls = 0;
  readonly pending: Array<{ resolve: (value: VerifiedToken) => void; reject: (error: unknown) => void }> = [];

  verify(): Promise<VerifiedToken> {
    this.calls++;
    return new Promise((resolve, reject) => this.pending.push({ resolve, reject }));
  }
}

describe('createCachedVerifier', () => {
  it('serves a second verification of the same token without calling the inner verifier', async () => {
    const clock = new ManualClock(START);
    const inner = new CountingVerifier(fake);
    const cached = createCachedVerifier(inner, {}, clock);
    const first = await cached.verify(valid('alice'));
    const second = await cached.verify(valid('alice'));
    expect(second).toBe(first);
    expect(second.user).toBe('alice');
    expect(inner.calls).toBe(1);
  });

  it('hands back the same settled promise on every hit, allocating none', async () => {
    const cached = createCachedVerifier(fake, {}, new ManualClock(START));
    await cached.verify(valid('alice'));
    expect(cached.verify(valid('alice'))).toBe(cached.verify(valid('alice')));
  });

  it('serves an entry until just before expiresAt, then verifies again', async () => {
    const clock = new ManualClock(START);
    const inner = new CountingVerifier(fake);
    const cached = createCachedVerifier(inner, {}, clock);
    const token = valid('alice', START + 10_000);
    await cached.verify(token);
    clock.advance(9_999);
    await cached.verify(token);
    expect(inner.calls).toBe(1);
    clock.advance(1);
    await cached.verify(token);
    expect(inner.calls).toBe(2);
  });

  it("re-verifies an expired entry with the real verifier, which refuses it as 'expired'", async () => {
    const clock = new ManualClock(START);
    const inner = new CountingVerifier(createTokenVerifier({ secret: SECRET, clockToleranceSec: 0 }, clock));
    const cached = createCachedVerifier(inner, {}, clock);
    const exp = START / 1000 + 60;
    const token = await new SignJWT({ sub: 'alice', exp })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(SECRET));

    expect((await cached.verify(token)).expiresAt).toBe(exp * 1000);
    clock.advance(59_000);
    await cached.verify(token);
    expect(inner.calls).toBe(1);

    clock.advance(1_000);
    expect((await refusal(cached.verify(token))).reason).toBe('expired');
    expect((await refusal(cached.verify(token))).reason).toBe('expired');
    expect(inner.calls).toBe(3);
  });

  it('does not keep a token that was accepted already past its expiresAt (clock tolerance)', async () => {
    const clock = new ManualClock(START);
    const inner = new CountingVerifier(fake);
    const cached = createCachedVerifier(inner, {}, clock);
    const token = valid('alice', START - 1_000);
    await cached.verify(token);
    await cached.verify(token);
    expect(inner.calls).toBe(2);
  });

  it('evicts the least recently used token beyond maxEntries (recency kept to the second)', async () => {
    const inner = new CountingVerifier(fake);
    const clock = new ManualClock(START);
    const cached = createCachedVerifier(inner, { maxEntries: 2 }, clock);
    const [a, b, c] = [valid('a'), valid('b'), valid('c')];
    await cached.verify(a);
    await cached.verify(b);
    clock.advance(1_000);
    expect(cached.peek(a)).toBeDefined(); // a is now the most recently used: b is the oldest
    await cached.verify(c); // evicts b
    await cached.verify(a);
    await cached.verify(c);
    expect(inner.callsFor(a)).toBe(1);
    expect(inner.callsFor(c)).toBe(1);
    await cached.verify(b);
    expect(inner.callsFor(b)).toBe(2);
  });

  it('keeps the order of a token hit again within the same second', async () => {
    const inner = new CountingVerifier(fake);
    const cached = createCachedVerifier(inner, { maxEntries: 2 }, new ManualClock(START));
    const [a, b, c] = [valid('a'), valid('b'), valid('c')];
    await cached.verify(a);
    await cached.verify(b);
    await cached.verify(a); // within the second: a keeps its place as the oldest
    await cached.verify(c); // evicts a
    await cached.verify(b);
    await cached.verify(a);
    expect([inner.callsFor(a), inner.callsFor(b), inner.callsFor(c)]).toEqual([2, 1, 1]);
  });

  it('holds 10 000 tokens by default and evicts the first beyond that', async () => {
    const inner = new CountingVerifier(fake);
    const cached = createCachedVerifier(inner, {}, new ManualClock(START));
    for (let i = 0; i <= 10_000; i++) await cached.verify(valid(`u${i}`));
    await cached.verify(valid('u1'));
    expect(inner.callsFor(valid('u1'))).toBe(1);
    await cached.verify(valid('u0'));
    expect(inner.callsFor(valid('u0'))).toBe(2);
  });

  it('peeks synchronously at a cached, unexpired token and never verifies on a miss', async () => {
    const clock = new ManualClock(START);
    const counting = new CountingVerifier(fake);
    const cache = createCachedVerifier(counting, {}, clock);
    const token = valid('alice', START + 1_000);
    expect(cache.peek(token)).toBeUndefined();
    expect(counting.calls).toBe(0);
    await cache.verify(token);
    expect(cache.peek(token)).toMatchObject({ user: 'alice', expiresAt: START + 1_000 });
    clock.advance(1_000);
    expect(cache.peek(token)).toBeUndefined();
    expect(counting.calls).toBe(1);
  });

  it('never caches a failure', async () => {
    const inner = new CountingVerifier(fake);
    const cached = createCachedVerifier(inner, {}, new ManualClock(START));
    expect((await refusal(cached.verify('bad-token'))).reason).toBe('signature');
    expect((await refusal(cached.verify('bad-token'))).reason).toBe('signature');
    expect(inner.calls).toBe(2);
  });

  it('turns an inner verifier that throws synchronously into a rejection, not cached', async () => {
    let calls = 0;
    const throwing: TokenVerifier = {
      verify() {
        calls++;
        throw new TokenError('malformed');
      },
    };
    const cached = createCachedVerifier(throwing, {}, new ManualClock(START));
    expect((await refusal(cached.verify('x'))).reason).toBe('malformed');
    expect((await refusal(cached.verify('x'))).reason).toBe('malformed');
    expect(calls).toBe(2);
  });

  it('shares one in-flight verification between concurrent callers of the same token', async () => {
    const inner = new DeferredVerifier();
    const cached = createCachedVerifier(inner, {}, new ManualClock(START));
    const results = [cached.verify('t'), cached.verify('t'), cached.verify('t')];
    expect(inner.calls).toBe(1);
    const other = cached.verify('u');
    expect(inner.calls).toBe(2);

    const verified: VerifiedToken = { user: 'alice', expiresAt: START + 60_000, claims: { sub: 'alice' } };
    inner.pending[0]?.resolve(verified);
    for (const result of await Promise.all(results)) expect(result).toBe(verified);
    await cached.verify('t');
    expect(inner.calls).toBe(2);

    inner.pending[1]?.reject(new TokenError('signature'));
    expect((await refusal(other)).reason).toBe('signature');
  });

  it('shares an in-flight failure, then verifies afresh on the next call', async () => {
    const inner = new DeferredVerifier();
    const cached = createCachedVerifier(inner, {}, new ManualClock(START));
    const results = [cached.verify('t'), cached.verify('t')];
    inner.pending[0]?.reject(new TokenError('unknown_key'));
    for (const result of results) expect((await refusal(result)).reason).toBe('unknown_key');
    void cached.verify('t').catch(() => undefined);
    expect(inner.calls).toBe(2);
  });

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('refuses maxEntries %s with a ConfigError', (maxEntries) => {
    expect(() => createCachedVerifier(fake, { maxEntries }, new ManualClock(START))).toThrow(ConfigError);
    expect(() => createCachedVerifier(fake, { maxEntries }, new ManualClock(START))).toThrow(/verificationCacheSize/);
  });
});
