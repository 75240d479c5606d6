import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CompactSign, SignJWT, exportJWK, exportPKCS8, exportSPKI, generateKeyPair, importPKCS8 } from 'jose';
import type { CryptoKey, JWTPayload } from 'jose';
import { ManualClock } from '../src/clock.js';
import { ConfigError, KeysUnavailableError, TokenError, type TokenFailureReason } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import { createTokenVerifier, type JwtOptions, type TokenVerifier } from '../src/token-verifier.js';

const START = Date.UTC(2030, 0, 1);
const NOW = START / 1000;
const SECRET = 'test-secret-that-is-long-enough-for-hs256';
const OTHER_SECRET = 'another-secret-that-is-long-enough-too';
const ISSUER = 'https://issuer.example';
const AUDIENCE = 'authsocket';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
const claims = (extra: JWTPayload = {}): JWTPayload => ({ sub: 'alice', iat: NOW, exp: NOW + 3600, ...extra });

/** An HMAC-signed token; `extra` claims set to undefined are left out (JSON drops them). */
function hs(extra: JWTPayload = {}, alg = 'HS256', secret = SECRET, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims(extra)).setProtectedHeader({ ...header, alg }).sign(bytes(secret));
}

function signWith(key: CryptoKey, alg: string, extra: JWTPayload = {}, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims(extra)).setProtectedHeader({ ...header, alg }).sign(key);
}

function configError(build: () => unknown): ConfigError {
  try {
    build();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

/** Catches an outage refusal: a KeysUnavailableError that says nothing of the token. */
async function outage(promise: Promise<unknown>, token: string): Promise<KeysUnavailableError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  if (!(caught instanceof KeysUnavailableError)) throw new Error(`expected a KeysUnavailableError, got ${String(caught)}`);
  expect(caught.code).toBe('ERR_KEYS_UNAVAILABLE');
  expect(caught.message).not.toContain(token);
  expect(String(caught.cause ?? '')).not.toContain(token);
  return caught;
}

/** Catches the refusal and checks what every refusal must satisfy, whatever its reason. */
async function refusal(promise: Promise<unknown>, token: string): Promise<TokenError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  if (!(caught instanceof TokenError)) throw new Error(`expected a TokenError, got ${String(caught)}`);
  expect(caught.code).toBe('ERR_TOKEN_INVALID');
  if (token.length > 0) {
    expect(caught.message).not.toContain(token);
    expect(String(caught.cause ?? '')).not.toContain(token);
  }
  return caught;
}

interface TestServer {
  readonly url: string;
  hits(): number;
  close(): Promise<void>;
}

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestServer> {
  let hits = 0;
  const server = createServer((req, res) => {
    hits++;
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('expected a TCP address');
  return {
    url: `http://127.0.0.1:${address.port}/jwks.json`,
    hits: () => hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const json = (body: unknown) => (_req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

let clock: ManualClock;
let rsa: { publicKey: CryptoKey; privateKey: CryptoKey };
let attackerRsa: { publicKey: CryptoKey; privateKey: CryptoKey };
let rsaPem: string;
/** WebCrypto binds a private key to one algorithm: PS256 or RS384 signing needs its own import. */
let rsaKeyFor: (alg: string) => Promise<CryptoKey>;
let verifiers: Record<'hs' | 'rs' | 'strict', TokenVerifier>;

beforeAll(async () => {
  rsa = await generateKeyPair('RS256', { extractable: true });
  const pkcs8 = await exportPKCS8(rsa.privateKey);
  rsaKeyFor = (alg) => importPKCS8(pkcs8, alg);
  attackerRsa = await generateKeyPair('RS256');
  rsaPem = await exportSPKI(rsa.publicKey);
});

function setup(): void {
  clock = new ManualClock(START);
  verifiers = {
    hs: createTokenVerifier({ secret: SECRET }, clock),
    rs: createTokenVerifier({ publicKey: rsaPem }, clock),
    strict: createTokenVerifier({ secret: SECRET, issuer: ISSUER, audience: AUDIENCE }, clock),
  };
}

describe('createTokenVerifier: accepted tokens', () => {
  beforeAll(setup);

  it('returns the user, expiresAt in ms and the claims of a valid HS256 token', async () => {
    const token = await hs({ role: 'admin' });
    const verified = await verifiers.hs.verify(token);
    expect(verified.user).toBe('alice');
    expect(verified.expiresAt).toBe((NOW + 3600) * 1000);
    expect(verified.claims).toMatchObject({ sub: 'alice', role: 'admin', exp: NOW + 3600 });
  });

  it('accepts a valid RS256 token against the PEM public key', async () => {
    const verified = await verifiers.rs.verify(await signWith(rsa.privateKey, 'RS256'));
    expect(verified.user).toBe('alice');
  });

  it('accepts PS256 with an RSA public key by default', async () => {
    const verified = await verifiers.rs.verify(await signWith(await rsaKeyFor('PS256'), 'PS256'));
    expect(verified.user).toBe('alice');
  });

  it('accepts ES256 and EdDSA tokens against their own PEM public keys', async () => {
    for (const alg of ['ES256', 'EdDSA']) {
      const pair = await generateKeyPair(alg);
      const verifier = createTokenVerifier({ publicKey: await exportSPKI(pair.publicKey) }, clock);
      expect((await verifier.verify(await signWith(pair.privateKey, alg))).user).toBe('alice');
    }
  });

  it('accepts ES384 with a P-384 key when algorithms says so', async () => {
    const pair = await generateKeyPair('ES384');
    const verifier = createTokenVerifier({ publicKey: await exportSPKI(pair.publicKey), algorithms: ['ES384'] }, clock);
    expect((await verifier.verify(await signWith(pair.privateKey, 'ES384'))).user).toBe('alice');
  });

  it('accepts a token with the configured issuer and one matching audience among several', async () => {
    const token = await hs({ iss: ISSUER, aud: ['other', AUDIENCE] });
    expect((await verifiers.strict.verify(token)).user).toBe('alice');
  });

  it('reads the user from a configured userClaim', async () => {
    const verifier = createTokenVerifier({ secret: SECRET, userClaim: 'uid' }, clock);
    expect((await verifier.verify(await hs({ uid: 'u-42' }))).user).toBe('u-42');
  });

  it('accepts a Uint8Array secret of 32 bytes', async () => {
    const secret = new Uint8Array(32).fill(7);
    const token = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256' }).sign(secret);
    const verifier = createTokenVerifier({ secret }, clock);
    expect((await verifier.verify(token)).user).toBe('alice');
  });

  it('verifies each allowed HS algorithm with its own hash, and refuses the one left out', async () => {
    const verifier = createTokenVerifier({ secret: SECRET, algorithms: ['HS384', 'HS512'] }, clock);
    for (const alg of ['HS512', 'HS384', 'HS512']) expect((await verifier.verify(await hs({}, alg))).user).toBe('alice');
    const hs256 = await hs({}, 'HS256');
    expect((await refusal(verifier.verify(hs256), hs256)).reason).toBe('algorithm');
    // Same secret, right alg in the header, but signed with another hash: a key per algorithm matters.
    const [head, body] = (await hs({}, 'HS512')).split('.');
    const forged = `${head}.${body}.${(await hs({}, 'HS384')).split('.')[2]}`;
    expect((await refusal(verifier.verify(forged), forged)).reason).toBe('signature');
  });

  it('keeps the key it was given: mutating the secret buffer afterwards changes nothing', async () => {
    const secret = new Uint8Array(32).fill(7);
    const verifier = createTokenVerifier({ secret }, clock);
    const token = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256' }).sign(new Uint8Array(32).fill(7));
    secret.fill(9);
    expect((await verifier.verify(token)).user).toBe('alice');
  });

  it.each<{ name: string; extra: JWTPayload }>([
    { name: 'accepts a token expired 4 s ago, within the default 5 s tolerance', extra: { exp: NOW - 4 } },
    { name: 'accepts a token whose nbf is 4 s ahead, within the default 5 s tolerance', extra: { nbf: NOW + 4 } },
  ])('$name', async ({ extra }) => {
    const verified = await verifiers.hs.verify(await hs(extra));
    expect(verified.expiresAt).toBe((extra.exp ?? NOW + 3600) * 1000);
  });

  it('judges time by the injected clock, not the system time', async () => {
    const local = new ManualClock(START);
    const verifier = createTokenVerifier({ secret: SECRET, clockToleranceSec: 0 }, local);
    // nbf lies in 2030: only a verifier reading the manual clock accepts it today.
    const token = await hs({ nbf: NOW, exp: NOW + 60 });
    expect((await verifier.verify(token)).user).toBe('alice');
    local.advance(60_000);
    expect((await refusal(verifier.verify(token), token)).reason).toBe('expired');
  });
});

interface Attack {
  readonly name: string;
  readonly against: 'hs' | 'rs' | 'strict';
  readonly token: () => Promise<string> | string;
  readonly reason: TokenFailureReason;
}

const attacks: Attack[] = [
  {
    name: 'refuses an unsigned token with alg none',
    against: 'hs',
    token: () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.`,
    reason: 'algorithm',
  },
  {
    name: 'refuses alg none against an RSA-configured verifier too',
    against: 'rs',
    token: () => `${b64({ alg: 'none' })}.${b64(claims())}.`,
    reason: 'algorithm',
  },
  {
    name: 'refuses an HS256 token signed with the RSA public key PEM as secret (HS/RS confusion)',
    against: 'rs',
    token: () => hs({}, 'HS256', rsaPem),
    reason: 'algorithm',
  },
  {
    name: 'refuses HS512 when only HS256 is allowed',
    against: 'hs',
    token: () => hs({}, 'HS512'),
    reason: 'algorithm',
  },
  {
    name: 'refuses RS384 when the RSA key defaults allow only RS256 and PS256',
    against: 'rs',
    token: async () => signWith(await rsaKeyFor('RS384'), 'RS384'),
    reason: 'algorithm',
  },
  {
    name: 'refuses a token from the wrong issuer',
    against: 'strict',
    token: () => hs({ iss: 'https://evil.example', aud: AUDIENCE }),
    reason: 'claims',
  },
  {
    name: 'refuses a token without iss when an issuer is configured',
    against: 'strict',
    token: () => hs({ aud: AUDIENCE }),
    reason: 'claims',
  },
  {
    name: 'refuses a token for the wrong audience',
    against: 'strict',
    token: () => hs({ iss: ISSUER, aud: 'someone-else' }),
    reason: 'claims',
  },
  {
    name: 'refuses a token without aud when an audience is configured',
    against: 'strict',
    token: () => hs({ iss: ISSUER }),
    reason: 'claims',
  },
  {
    name: 'refuses a token without exp',
    against: 'hs',
    token: () => hs({ exp: undefined }),
    reason: 'claims',
  },
  {
    name: 'refuses a token whose signed exp is not a number',
    against: 'hs',
    token: () => new CompactSign(bytes(JSON.stringify({ sub: 'alice', exp: 'tomorrow' }))).setProtectedHeader({ alg: 'HS256' }).sign(bytes(SECRET)),
    reason: 'claims',
  },
  {
    name: 'refuses a token expired 60 s ago, beyond the tolerance',
    against: 'hs',
    token: () => hs({ exp: NOW - 60 }),
    reason: 'expired',
  },
  {
    name: 'refuses a token expired exactly the tolerance ago',
    against: 'hs',
    token: () => hs({ exp: NOW - 5 }),
    reason: 'expired',
  },
  {
    name: 'refuses a token whose nbf is 60 s in the future, beyond the tolerance',
    against: 'hs',
    token: () => hs({ nbf: NOW + 60 }),
    reason: 'not_yet_valid',
  },
  {
    name: 'refuses a token whose signed nbf is not a number as a claims failure',
    against: 'hs',
    token: () => new CompactSign(bytes(JSON.stringify({ ...claims(), nbf: 'soon' }))).setProtectedHeader({ alg: 'HS256' }).sign(bytes(SECRET)),
    reason: 'claims',
  },
  {
    name: 'refuses a token signed with the wrong secret',
    against: 'hs',
    token: () => hs({}, 'HS256', OTHER_SECRET),
    reason: 'signature',
  },
  {
    name: 'refuses an RS256 token signed by another key',
    against: 'rs',
    token: () => signWith(attackerRsa.privateKey, 'RS256'),
    reason: 'signature',
  },
  {
    name: 'refuses a token whose payload was changed after signing',
    against: 'hs',
    token: async () => {
      const [header, , signature] = (await hs()).split('.');
      return `${header}.${b64(claims({ sub: 'admin' }))}.${signature}`;
    },
    reason: 'signature',
  },
  {
    name: 'refuses a token with one payload character flipped',
    against: 'hs',
    token: async () => {
      const token = await hs();
      const at = token.indexOf('.') + 5;
      return token.slice(0, at) + (token[at] === 'A' ? 'B' : 'A') + token.slice(at + 1);
    },
    reason: 'signature',
  },
  {
    name: 'refuses a token cut in half',
    against: 'hs',
    token: async () => {
      const token = await hs();
      return token.slice(0, Math.floor(token.length / 2));
    },
    reason: 'malformed',
  },
  {
    name: 'refuses a token without its signature segment',
    against: 'hs',
    token: async () => {
      const token = await hs();
      return token.slice(0, token.lastIndexOf('.'));
    },
    reason: 'malformed',
  },
  {
    name: 'refuses a 1 MB token without parsing it',
    against: 'hs',
    token: () => `${b64({ alg: 'HS256' })}.${'A'.repeat(1024 * 1024)}.sig`,
    reason: 'malformed',
  },
  {
    name: 'refuses a correctly signed token longer than 8192 characters',
    against: 'hs',
    token: () => hs({ padding: 'x'.repeat(8192) }),
    reason: 'malformed',
  },
  {
    name: 'refuses random garbage',
    against: 'hs',
    token: () => 'this is not a jwt at all',
    reason: 'malformed',
  },
  {
    name: 'refuses three dots of nothing',
    against: 'hs',
    token: () => '..',
    reason: 'malformed',
  },
  {
    name: 'refuses an empty token',
    against: 'hs',
    token: () => '',
    reason: 'malformed',
  },
  {
    name: 'refuses a header that is not base64url',
    against: 'hs',
    token: () => `%%%.${b64(claims())}.sig`,
    reason: 'malformed',
  },
  {
    name: 'refuses a header that is not JSON',
    against: 'hs',
    token: () => `${Buffer.from('{alg:HS256').toString('base64url')}.${b64(claims())}.sig`,
    reason: 'malformed',
  },
  {
    name: 'refuses a header without alg',
    against: 'hs',
    token: () => `${b64({ typ: 'JWT' })}.${b64(claims())}.sig`,
    reason: 'malformed',
  },
  {
    name: 'refuses a correctly signed payload that is not JSON',
    against: 'hs',
    token: () => new CompactSign(bytes('not json')).setProtectedHeader({ alg: 'HS256' }).sign(bytes(SECRET)),
    reason: 'malformed',
  },
  {
    name: 'refuses a correctly signed payload that is a JSON array',
    against: 'hs',
    token: () => new CompactSign(bytes('["alice"]')).setProtectedHeader({ alg: 'HS256' }).sign(bytes(SECRET)),
    reason: 'malformed',
  },
  {
    name: 'refuses a token with an unknown critical header',
    against: 'hs',
    token: () => `${b64({ alg: 'HS256', crit: ['x-must-understand'], 'x-must-understand': true })}.${b64(claims())}.sig`,
    reason: 'malformed',
  },
  {
    name: 'refuses a token with a jku and kid pointing elsewhere, signed with the attacker secret',
    against: 'hs',
    token: () => hs({}, 'HS256', OTHER_SECRET, { jku: 'http://127.0.0.1:1/evil', kid: 'evil' }),
    reason: 'signature',
  },
  {
    name: 'refuses a token without the user claim',
    against: 'hs',
    token: () => hs({ sub: undefined }),
    reason: 'claims',
  },
  {
    name: 'refuses a token whose user claim is empty',
    against: 'hs',
    token: () => hs({ sub: '' }),
    reason: 'claims',
  },
];

describe('createTokenVerifier: attack matrix', () => {
  beforeAll(setup);

  it.each(attacks)('$name', async ({ against, token, reason }) => {
    const jwt = await token();
    const error = await refusal(verifiers[against].verify(jwt), jwt);
    expect(error.reason).toBe(reason);
  });

  it('refuses a user claim that is not a string', async () => {
    const verifier = createTokenVerifier({ secret: SECRET, userClaim: 'uid' }, clock);
    const token = await hs({ uid: 42 });
    expect((await refusal(verifier.verify(token), token)).reason).toBe('claims');
  });
});

describe('createTokenVerifier: JWKS', () => {
  let good: TestServer;
  let evil: TestServer;

  beforeAll(async () => {
    setup();
    const jwk = await exportJWK(rsa.publicKey);
    good = await serve(json({ keys: [{ ...jwk, kid: 'k1', alg: 'RS256', use: 'sig' }] }));
    evil = await serve(json({ keys: [{ ...(await exportJWK(attackerRsa.publicKey)), kid: 'evil', alg: 'RS256' }] }));
  });
  afterAll(async () => {
    await good.close();
    await evil.close();
  });

  it('verifies a token whose kid is in the served JWKS and fetches the set once', async () => {
    const verifier = createTokenVerifier({ jwksUrl: good.url }, clock);
    const before = good.hits();
    for (let i = 0; i < 3; i++) {
      expect((await verifier.verify(await signWith(rsa.privateKey, 'RS256', {}, { kid: 'k1' }))).user).toBe('alice');
    }
    expect(good.hits() - before).toBe(1);
  });

  // Was 'keys_unavailable' (401 either way); an unknown kid in a set just fetched is a bad token,
  // while 'keys_unavailable' now means an outage (KeysUnavailableError, 503 / 1011).
  it("refuses a kid that the freshly fetched JWKS does not hold as 'unknown_key'", async () => {
    const verifier = createTokenVerifier({ jwksUrl: good.url }, clock);
    const token = await signWith(rsa.privateKey, 'RS256', {}, { kid: 'unknown' });
    expect((await refusal(verifier.verify(token), token)).reason).toBe('unknown_key');
  });

  it('never fetches a jku from the token header, whatever its kid', async () => {
    const verifier = createTokenVerifier({ jwksUrl: good.url }, clock);
    const evilKid = await signWith(attackerRsa.privateKey, 'RS256', {}, { kid: 'evil', jku: evil.url });
    expect((await refusal(verifier.verify(evilKid), evilKid)).reason).toBe('unknown_key');
    const goodKid = await signWith(attackerRsa.privateKey, 'RS256', {}, { kid: 'k1', jku: evil.url });
    expect((await refusal(verifier.verify(goodKid), goodKid)).reason).toBe('signature');
    const hmac = await hs({}, 'HS256', OTHER_SECRET, { kid: 'evil', jku: evil.url });
    expect((await refusal(verifiers.hs.verify(hmac), hmac)).reason).toBe('signature');
    expect(evil.hits()).toBe(0);
  });

  it('refuses an HS256 token at a JWKS verifier before fetching anything', async () => {
    const server = await serve(json({ keys: [] }));
    try {
      const verifier = createTokenVerifier({ jwksUrl: server.url }, clock);
      const token = await hs();
      expect((await refusal(verifier.verify(token), token)).reason).toBe('algorithm');
      expect(server.hits()).toBe(0);
    } finally {
      await server.close();
    }
  });

  // These were TokenError('keys_unavailable') (401 / 4401): an outage now is a KeysUnavailableError.
  it('reports a JWKS URL that refuses connections as KeysUnavailableError naming the URL', async () => {
    const closed = await serve(json({ keys: [] }));
    await closed.close();
    const verifier = createTokenVerifier({ jwksUrl: closed.url }, clock);
    const token = await signWith(rsa.privateKey, 'RS256', {}, { kid: 'k1' });
    const error = await outage(verifier.verify(token), token);
    expect(error.url).toBe(closed.url);
    expect(error.cause).toBeDefined();
  });

  it.each([
    { name: 'reports a JWKS endpoint answering 500 as KeysUnavailableError', status: 500, body: 'oops' },
    { name: 'reports a JWKS endpoint answering invalid JSON as KeysUnavailableError', status: 200, body: '{not json' },
    { name: 'reports a JWKS without a keys array as KeysUnavailableError', status: 200, body: '{"keys":"none"}' },
  ])('$name', async ({ status, body }) => {
    const server = await serve((_req, res) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(body);
    });
    try {
      const verifier = createTokenVerifier({ jwksUrl: server.url }, clock);
      const token = await signWith(rsa.privateKey, 'RS256', {}, { kid: 'k1' });
      expect((await outage(verifier.verify(token), token)).reason).toBe('keys_unavailable');
    } finally {
      await server.close();
    }
  });
});

describe('createTokenVerifier: JWKS cache policy (rotation, outage, hang)', () => {
  /** A JWKS server whose keys the test changes, and that can be told to hang. */
  let keys: unknown[];
  let server: TestServer;
  let es: { publicKey: CryptoKey; privateKey: CryptoKey };
  const lines: Array<{ level: string; fields: Record<string, unknown>; message: string }> = [];
  const logger = Object.fromEntries(
    (['debug', 'info', 'warn', 'error'] as const).map((level) => [
      level,
      (fields: Record<string, unknown>, message: string) => lines.push({ level, fields, message }),
    ]),
  ) as unknown as Logger;
  const settle = () => new Promise((resolve) => setTimeout(resolve, 30));

  beforeAll(async () => {
    es = await generateKeyPair('ES256');
  });
  beforeEach(async () => {
    setup();
    lines.length = 0;
    keys = [{ ...(await exportJWK(rsa.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }];
    server = await serve((_req, res) => json({ keys })(_req, res));
  });
  afterEach(async () => {
    await server.close();
  });

  it('verifies RS256 and ES256 tokens from one set', async () => {
    keys.push({ ...(await exportJWK(es.publicKey)), kid: 'e1', alg: 'ES256' });
    const verifier = createTokenVerifier({ jwksUrl: server.url }, clock);
    expect((await verifier.verify(await signWith(rsa.privateKey, 'RS256', {}, { kid: 'k1' }))).user).toBe('alice');
    expect((await verifier.verify(await signWith(es.privateKey, 'ES256', {}, { kid: 'e1' }))).user).toBe('alice');
    expect(server.hits()).toBe(1);
  });

  it('refetches for a kid added after the last fetch once the cooldown is over, not 30 s later', async () => {
    const verifier = createTokenVerifier({ jwksUrl: server.url, jwksCooldownMs: 2_000 }, clock);
    await verifier.verify(await signWith(rsa.privateKey, 'RS256', {}, { kid: 'k1' }));
    keys.push({ ...(await exportJWK(es.publicKey)), kid: 'rotated', alg: 'ES256' });
    const token = await signWith(es.privateKey, 'ES256', {}, { kid: 'rotated' });
    let settled = false;
    const verifying = verifier.verify(token).finally(() => (settled = true));
    await settle();
    expect(settled).toBe(false);
    // A second unknown kid within the cooldown shares the one refetch.
    const bogus = await signWith(attackerRsa.privateKey, 'RS256', {}, { kid: 'bogus' });
    const refusing = refusal(verifier.verify(bogus), bogus);
    clock.advance(2_000);
    expect((await verifying).user).toBe('alice');
    expect((await refusing).reason).toBe('unknown_key');
    expect(server.hits()).toBe(2);
  });

  it('refetches at once for an unknown kid when the last fetch is older than the cooldown', async () => {
    const verifier = createTokenVerifier({ jwksUrl: server.url, jwksCooldownMs: 2_000 }, clock);
    await verifier.verify(await signWith(rsa.privateKey, 'RS256', {}, { kid: 'k1' }));
    clock.advance(2_000);
    keys.push({ ...(await exportJWK(es.publicKey)), kid: 'rotated', alg: 'ES256' });
    expect((await verifier.verify(await signWith(es.privateKey, 'ES256', {}, { kid: 'rotated' }))).user).toBe('alice');
    expect(server.hits()).toBe(2);
  });

  it('keeps cached keys past their max age while the IdP is down, up to jwksStaleIfErrorMs, then refuses as an outage', async () => {
    const options = { jwksUrl: server.url, jwksCacheMaxAgeMs: 60_000, jwksStaleIfErrorMs: 120_000, jwksCooldownMs: 1_000 };
    const verifier = createTokenVerifier(options, clock, logger);
    const token = await signWith(rsa.privateKey, 'RS256', {}, { kid: 'k1' });
    await verifier.verify(token);
    await server.close();
    clock.advance(61_000);
    expect((await verifier.verify(token)).user).toBe('alice');
    expect(verifier.keysStatus?.()).toBe('stale');
    // An unknown kid while the IdP is down is an outage, not a bad token.
    clock.advance(1_000);
    const rotated = await signWith(es.privateKey, 'ES256', {}, { kid: 'rotated' });
    expect((await outage(verifier.verify(rotated), rotated)).url).toBe(server.url);
    clock.advance(120_000);
    expect((await outage(verifier.verify(token), token)).reason).toBe('keys_unavailable');
    expect(verifier.keysStatus?.()).toBe('unavailable');
    const failed = lines.filter((line) => line.message === 'JWKS fetch failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]?.fields.jwksUrl).toBe(server.url);
    expect(lines.some((line) => line.level === 'error' && line.fields.jwksUrl === server.url)).toBe(true);
    for (const line of lines) expect(JSON.stringify(line)).not.toContain(token);
  });

  it('uses fresh keys again once the IdP is back', async () => {
    let down = false;
    const flaky = await serve((req, res) => (down ? res.destroy() : json({ keys })(req, res)));
    try {
      const verifier = createTokenVerifier({ jwksUrl: flaky.url, jwksCacheMaxAgeMs: 1_000, jwksStaleIfErrorMs: 0 }, clock, logger);
      const token = await signWith(rsa.privateKey, 'RS256', {}, { kid: 'k1' });
      await verifier.verify(token);
      down = true;
      clock.advance(1_000);
      await outage(verifier.verify(token), token);
      down = false;
      clock.advance(1_000);
      expect((await verifier.verify(token)).user).toBe('alice');
      expect(verifier.keysStatus?.()).toBe('ok');
      expect(lines.map((line) => line.message)).toContain('JWKS reachable again');
    } finally {
      await flaky.close();
    }
  });

  it('bounds a JWKS endpoint that accepts and never answers by jwksTimeoutMs', async () => {
    const hanging = await serve(() => undefined);
    try {
      const verifier = createTokenVerifier({ jwksUrl: hanging.url, jwksTimeoutMs: 300 }, clock);
      const token = await signWith(rsa.privateKey, 'RS256', {}, { kid: 'k1' });
      const started = Date.now();
      await outage(verifier.verify(token), token);
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(hanging.hits()).toBe(1);
    } finally {
      await hanging.close();
    }
  });

  it.each([
    [{ jwksCooldownMs: -1 }, 'jwt.jwksCooldownMs'],
    [{ jwksTimeoutMs: 0 }, 'jwt.jwksTimeoutMs'],
    [{ jwksCacheMaxAgeMs: 1.5 }, 'jwt.jwksCacheMaxAgeMs'],
    [{ jwksStaleIfErrorMs: '1h' }, 'jwt.jwksStaleIfErrorMs'],
  ])('refuses %o as a ConfigError naming the option', (extra, option) => {
    const error = configError(() => createTokenVerifier({ jwksUrl: server.url, ...(extra as JwtOptions) }, clock));
    expect(error.option).toBe(option);
  });

  it('refuses the jwks options without jwksUrl', () => {
    expect(configError(() => createTokenVerifier({ secret: SECRET, jwksTimeoutMs: 100 }, clock)).option).toBe('jwt.jwksTimeoutMs');
  });
});

const spkiPem = { type: 'spki', format: 'pem' } as const;
const pkcs8Pem = { type: 'pkcs8', format: 'pem' } as const;
const rsaPemOf = (modulusLength: number): string =>
  generateKeyPairSync('rsa', { modulusLength, publicKeyEncoding: spkiPem, privateKeyEncoding: pkcs8Pem }).publicKey;
const ecPemOf = (namedCurve: string): string =>
  generateKeyPairSync('ec', { namedCurve, publicKeyEncoding: spkiPem, privateKeyEncoding: pkcs8Pem }).publicKey;

const configCases: Array<{ name: string; options: () => JwtOptions; option: string }> = [
  { name: 'refuses options without any key source', options: () => ({}), option: 'jwt' },
  { name: 'refuses a secret together with a public key', options: () => ({ secret: SECRET, publicKey: rsaPem }), option: 'jwt' },
  { name: 'refuses a secret together with a JWKS URL', options: () => ({ secret: SECRET, jwksUrl: 'https://a.example/jwks' }), option: 'jwt' },
  { name: 'refuses a 31-byte secret', options: () => ({ secret: 'x'.repeat(31) }), option: 'jwt.secret' },
  { name: 'refuses an empty secret', options: () => ({ secret: '' }), option: 'jwt.secret' },
  { name: 'refuses a 16-byte Uint8Array secret', options: () => ({ secret: new Uint8Array(16) }), option: 'jwt.secret' },
  { name: 'refuses a public key that is not a PEM', options: () => ({ publicKey: 'not a pem' }), option: 'jwt.publicKey' },
  {
    name: 'refuses a PEM whose body is not a key',
    options: () => ({ publicKey: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n' }),
    option: 'jwt.publicKey',
  },
  {
    name: 'refuses a private key PEM in place of the public key',
    options: () => ({
      publicKey: generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: spkiPem, privateKeyEncoding: pkcs8Pem }).privateKey,
    }),
    option: 'jwt.publicKey',
  },
  { name: 'refuses an RSA key shorter than 2048 bits', options: () => ({ publicKey: rsaPemOf(1024) }), option: 'jwt.publicKey' },
  { name: 'refuses an Ed448 key, which jose cannot verify with', options: () => ({ publicKey: generateKeyPairSync('ed448', { publicKeyEncoding: spkiPem, privateKeyEncoding: pkcs8Pem }).publicKey }), option: 'jwt.publicKey' },
  { name: 'refuses an EC key on secp256k1', options: () => ({ publicKey: ecPemOf('secp256k1') }), option: 'jwt.publicKey' },
  { name: 'refuses a P-384 key without explicit algorithms', options: () => ({ publicKey: ecPemOf('P-384') }), option: 'jwt.algorithms' },
  { name: "refuses the algorithm 'none'", options: () => ({ secret: SECRET, algorithms: ['none'] }), option: 'jwt.algorithms' },
  { name: "refuses 'none' beside a valid algorithm", options: () => ({ secret: SECRET, algorithms: ['HS256', 'NONE'] }), option: 'jwt.algorithms' },
  { name: 'refuses HS256 with a public key', options: () => ({ publicKey: rsaPem, algorithms: ['RS256', 'HS256'] }), option: 'jwt.algorithms' },
  { name: 'refuses HS256 with a JWKS URL', options: () => ({ jwksUrl: 'https://a.example/jwks', algorithms: ['HS256'] }), option: 'jwt.algorithms' },
  { name: 'refuses RS256 with a secret', options: () => ({ secret: SECRET, algorithms: ['RS256'] }), option: 'jwt.algorithms' },
  { name: 'refuses ES256 with an RSA key', options: () => ({ publicKey: rsaPem, algorithms: ['ES256'] }), option: 'jwt.algorithms' },
  { name: 'refuses an empty algorithm list', options: () => ({ secret: SECRET, algorithms: [] }), option: 'jwt.algorithms' },
  { name: 'refuses an unknown algorithm', options: () => ({ jwksUrl: 'https://a.example/jwks', algorithms: ['XS999'] }), option: 'jwt.algorithms' },
  { name: 'refuses a JWKS URL that is not a URL', options: () => ({ jwksUrl: 'jwks.json' }), option: 'jwt.jwksUrl' },
  { name: 'refuses a JWKS URL that is not http(s)', options: () => ({ jwksUrl: 'file:///etc/jwks.json' }), option: 'jwt.jwksUrl' },
  { name: 'refuses a negative clock tolerance', options: () => ({ secret: SECRET, clockToleranceSec: -1 }), option: 'jwt.clockToleranceSec' },
  { name: 'refuses a NaN clock tolerance', options: () => ({ secret: SECRET, clockToleranceSec: Number.NaN }), option: 'jwt.clockToleranceSec' },
  { name: 'refuses an empty userClaim', options: () => ({ secret: SECRET, userClaim: '' }), option: 'jwt.userClaim' },
  { name: 'refuses an empty issuer', options: () => ({ secret: SECRET, issuer: '' }), option: 'jwt.issuer' },
  { name: 'refuses an empty audience', options: () => ({ secret: SECRET, audience: '' }), option: 'jwt.audience' },
];

describe('createTokenVerifier: options', () => {
  it.each(configCases)('$name', ({ options, option }) => {
    let caught: unknown;
    try {
      createTokenVerifier(options(), new ManualClock(START));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    if (!(caught instanceof ConfigError)) return;
    expect(caught.option).toBe(option);
    expect(caught.code).toBe('ERR_INVALID_OPTION');
  });

  it('never puts the secret in a ConfigError message', () => {
    expect(() => createTokenVerifier({ secret: 'short-secret-value' }, new ManualClock(START))).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('short-secret-value') }),
    );
  });
});
