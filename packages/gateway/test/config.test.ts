import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Environment, type GatewayConfig, InvalidOptionError, loadConfig, OPTIONS, startGateway } from '../src/index.js';
import { printableConfig } from '../src/config.js';
import { OPTIONS_TABLE_END, optionsTable, withOptionsTable } from '../src/help.js';
import { GATEWAY_OPTION_SOURCES, JWT_OPTION_SOURCES, type LibraryMapping, REDIS_ENGINE_OPTION_SOURCES } from '../src/options.js';
import { REDIS_ENGINE_DEFAULTS } from '@authsocket/redis';
import { GATEWAY_OPTIONS } from '@authsocket/server';
import { API_KEY, SECRET } from './helpers.js';

/** A key source, so that each case is about its own option. */
const WITH_SECRET = { AUTHSOCKET_JWT_SECRET: SECRET };
const config = (args: string[], env: Environment = {}): GatewayConfig => loadConfig(args, env).config;

function failure(args: string[], env: Environment = {}): InvalidOptionError {
  try {
    loadConfig(args, env);
  } catch (error) {
    if (error instanceof InvalidOptionError) return error;
    throw error;
  }
  throw new Error(`expected ${JSON.stringify({ args, env })} to be refused`);
}

const dir = mkdtempSync(join(tmpdir(), 'authsocket-gateway-config-'));
const rsa = (bits: number) =>
  generateKeyPairSync('rsa', { modulusLength: bits }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
const goodPemPath = join(dir, 'good.pem');
writeFileSync(goodPemPath, rsa(2048));
const notPemPath = join(dir, 'not.pem');
writeFileSync(notPemPath, 'hello');

describe('loadConfig', () => {
  it('applies the declared defaults in demo mode', () => {
    expect(config(['--demo'])).toEqual({
      configFile: undefined,
      port: 8080,
      host: undefined,
      jwtSecret: undefined,
      jwtPublicKey: undefined,
      jwksUrl: undefined,
      issuer: undefined,
      audience: undefined,
      jwtAlgorithms: undefined,
      jwtClockToleranceSec: 5,
      jwtUserClaim: 'sub',
      allowedOrigins: undefined,
      ticketMode: 'optional',
      ticketTtlMs: 30_000,
      ticketReuse: false,
      requireAuthMessage: false,
      handshakeToken: false,
      perMessageAuth: false,
      verificationCacheSize: 10_000,
      maxHeldMessages: 1_000,
      closeOnLogout: false,
      maxPayload: 65_536,
      maxBufferedBytes: 1_048_576,
      messageRateLimit: { limit: 1_000, windowMs: 1_000 },
      authRateLimit: { limit: 10, windowMs: 60_000 },
      heartbeatIntervalMs: 30_000,
      history: { maxEntries: 1_000, maxAgeMs: 300_000 },
      expiryPolicy: 'reauth',
      reauthWindowMs: 30_000,
      reauthGraceMs: 10_000,
      authTimeoutMs: 10_000,
      maxConnectionsPerUser: 100,
      upgradeRateLimit: undefined,
      presence: false,
      presenceTopics: undefined,
      presenceInfoClaim: undefined,
      presenceMaxMembers: undefined,
      presenceJoinLeave: false,
      subscribeTopics: undefined,
      publishTopics: undefined,
      permissions: undefined,
      permissionsClaim: undefined,
      subscribeClaim: undefined,
      subscriptionTokenClaim: 'topic',
      wsPath: '/ws',
      redisUrl: undefined,
      redisClusterNodes: undefined,
      redisSentinels: undefined,
      redisSentinelName: 'mymaster',
      redisPassword: undefined,
      redisKeyPrefix: 'authsocket:',
      redisShards: 16,
      redisCommandTimeoutMs: 2_000,
      redisConnectTimeoutMs: 5_000,
      redisMaxReconnectDelayMs: 2_000,
      redisStreamTtlMs: 86_400_000,
      redisRevocationTtlMs: 86_400_000,
      redisLivenessIntervalMs: 1_000,
      redisLivenessTimeoutMs: 2_000,
      redisTrackedStreams: 10_000,
      redisIdempotencyWindowMs: 86_400_000,
      redisLeaseMs: 10_000,
      registry: true,
      trustProxy: undefined,
      nodeId: `${hostname()}-${process.pid}`,
      apiKey: undefined,
      logLevel: 'info',
      demo: true,
      acceptNoSubprotocol: false,
      drainDelayMs: 0,
      shutdownTimeoutMs: 30_000,
      staticDir: undefined,
    });
  });

  const valid: [string, string[], Environment, Partial<GatewayConfig>][] = [
    ['durations in ms', ['--reauth-window', '500ms'], {}, { reauthWindowMs: 500 }],
    ['durations in seconds', ['--reauth-window', '45s'], {}, { reauthWindowMs: 45_000 }],
    ['durations in minutes', ['--ticket-ttl', '2m'], {}, { ticketTtlMs: 120_000 }],
    ['durations in hours', ['--reauth-grace', '1h'], {}, { reauthGraceMs: 3_600_000 }],
    ['an auth timeout', ['--auth-timeout', '2s'], {}, { authTimeoutMs: 2_000 }],
    ['a per-user connection cap', [], { AUTHSOCKET_MAX_CONNECTIONS_PER_USER: '5' }, { maxConnectionsPerUser: 5 }],
    [
      'the JWKS cache policy',
      ['--jwks-cache-max-age', '5m', '--jwks-cooldown', '2s', '--jwks-timeout', '1500ms', '--jwks-stale-if-error', '0'],
      {},
      { jwksCacheMaxAgeMs: 300_000, jwksCooldownMs: 2_000, jwksTimeoutMs: 1_500, jwksStaleIfErrorMs: 0 },
    ],
    ['the JWKS cache policy from the environment', [], { AUTHSOCKET_JWKS_COOLDOWN: '3s' }, { jwksCooldownMs: 3_000 }],
    ['topic prefixes', ['--subscribe-topics', 'chat:, news:', '--publish-topics', '*'], {}, { subscribeTopics: ['chat:', 'news:'], publishTopics: [''] }],
    ['no topics', ['--subscribe-topics', '-'], {}, { subscribeTopics: [] }],
    [
      'repeated permission rules, with conditions',
      ['--permission', 'user:{sub}:*=subscribe,presence', '--permission', 'chat:*=publish if role=admin,level=3,verified=true'],
      {},
      {
        permissions: [
          { topics: 'user:{sub}:*', allow: ['subscribe', 'presence'] },
          { topics: 'chat:*', allow: ['publish'], when: { role: 'admin', level: 3, verified: true } },
        ],
      },
    ],
    [
      'permission rules from the environment, separated by ;',
      [],
      { AUTHSOCKET_PERMISSION: 'news=subscribe; team:*=subscribe,publish' },
      { permissions: [{ topics: 'news', allow: ['subscribe'] }, { topics: 'team:*', allow: ['subscribe', 'publish'] }] },
    ],
    [
      'the permission claims',
      ['--permissions-claim', 'topics', '--subscribe-claim', 'channels', '--subscription-token-claim', 'channel'],
      {},
      { permissionsClaim: 'topics', subscribeClaim: 'channels', subscriptionTokenClaim: 'channel' },
    ],
    ['no subscription tokens', ['--subscription-token-claim', 'off'], {}, { subscriptionTokenClaim: false }],
    ['an upgrade rate', ['--upgrade-rate-limit', '50/1s'], {}, { upgradeRateLimit: { limit: 50, windowMs: 1_000 } }],
    ['no upgrade rate limit', [], { AUTHSOCKET_UPGRADE_RATE_LIMIT: 'off' }, { upgradeRateLimit: false }],
    ['a zero window', ['--reauth-window', '0'], {}, { reauthWindowMs: 0 }],
    ['--name=value', ['--expiry-policy=close'], {}, { expiryPolicy: 'close' }],
    ['a list of origins', ['--allowed-origins', 'https://a.example, http://localhost:5173'], {}, { allowedOrigins: ['https://a.example', 'http://localhost:5173'] }],
    ['AUTHSOCKET_PORT', [], { AUTHSOCKET_PORT: '9000' }, { port: 9000 }],
    ['PORT', [], { PORT: '7000' }, { port: 7000 }],
    ['AUTHSOCKET_PORT over PORT', [], { AUTHSOCKET_PORT: '9000', PORT: '7000' }, { port: 9000 }],
    ['--port over both', ['--port', '0'], { AUTHSOCKET_PORT: '9000', PORT: '7000' }, { port: 0 }],
    ['--issuer over AUTHSOCKET_ISSUER', ['--issuer', 'flag'], { AUTHSOCKET_ISSUER: 'env' }, { issuer: 'flag' }],
    ['AUTHSOCKET_ISSUER without a flag', [], { AUTHSOCKET_ISSUER: 'env' }, { issuer: 'env' }],
    ['an empty variable as unset', [], { AUTHSOCKET_ISSUER: '', AUTHSOCKET_PORT: '' }, { issuer: undefined, port: 8080 }],
    ['AUTHSOCKET_DEMO=false', [], { AUTHSOCKET_DEMO: 'false' }, { demo: false }],
    ['AUTHSOCKET_DEMO=1', [], { AUTHSOCKET_DEMO: '1' }, { demo: true }],
    ['--demo over AUTHSOCKET_DEMO=false', ['--demo'], { AUTHSOCKET_DEMO: 'false' }, { demo: true }],
    ['a redis URL', ['--redis-url', 'redis://:pw@127.0.0.1:6380/0'], {}, { redisUrl: 'redis://:pw@127.0.0.1:6380/0' }],
    ['Redis Cluster seed nodes', ['--redis-cluster-nodes', '10.0.0.1:7000, [::1]:7001'], {}, { redisClusterNodes: ['10.0.0.1:7000', '[::1]:7001'], redisUrl: undefined }],
    ['Redis Sentinels and a master name', [], { AUTHSOCKET_REDIS_SENTINELS: 'sentinel-a:26379,sentinel-b:26379', AUTHSOCKET_REDIS_SENTINEL_NAME: 'cache' }, { redisSentinels: ['sentinel-a:26379', 'sentinel-b:26379'], redisSentinelName: 'cache' }],
    ['a Redis password with a target', ['--redis-url', 'redis://127.0.0.1:6380'], { AUTHSOCKET_REDIS_PASSWORD: 'hunter2' }, { redisPassword: 'hunter2' }],
    ['trusted proxy hops', ['--trust-proxy', '2'], {}, { trustProxy: 2 }],
    ['trusted proxy addresses', [], { AUTHSOCKET_TRUST_PROXY: '10.0.0.0/8, 192.0.2.7' }, { trustProxy: ['10.0.0.0/8', '192.0.2.7'] }],
    ['a node id', ['--node-id', 'gw-1'], {}, { nodeId: 'gw-1' }],
    ['a log level', [], { AUTHSOCKET_LOG_LEVEL: 'debug' }, { logLevel: 'debug' }],
    ['a WebSocket path', ['--ws-path', '/realtime'], {}, { wsPath: '/realtime' }],
    ['ticket reuse', ['--ticket-reuse'], {}, { ticketReuse: true }],
    ['two-layer mode', ['--require-auth-message', '--ticket-mode', 'required'], {}, { requireAuthMessage: true, ticketMode: 'required' }],
    ['handshake tokens from the environment', [], { AUTHSOCKET_HANDSHAKE_TOKEN: 'true' }, { handshakeToken: true }],
    ['per-message auth and its cache', ['--per-message-auth', '--verification-cache-size', '50'], {}, { perMessageAuth: true, verificationCacheSize: 50 }],
    ['held messages', ['--max-held-messages', '20'], {}, { maxHeldMessages: 20 }],
    ['close on logout', [], { AUTHSOCKET_CLOSE_ON_LOGOUT: 'yes' }, { closeOnLogout: true }],
    ['a payload size in bytes', ['--max-payload', '2048'], {}, { maxPayload: 2_048 }],
    ['sizes in KiB and MiB', ['--max-payload', '64KiB', '--max-buffered-bytes', '4MiB'], {}, { maxPayload: 65_536, maxBufferedBytes: 4_194_304 }],
    ['message and auth rates', ['--message-rate-limit', '50/1s'], { AUTHSOCKET_AUTH_RATE_LIMIT: '3/1m' }, { messageRateLimit: { limit: 50, windowMs: 1_000 }, authRateLimit: { limit: 3, windowMs: 60_000 } }],
    ['no heartbeat', ['--heartbeat-interval', '0'], {}, { heartbeatIntervalMs: 0 }],
    ['history bounds', ['--history', '200/2m'], {}, { history: { maxEntries: 200, maxAgeMs: 120_000 } }],
    ['no history', [], { AUTHSOCKET_HISTORY: 'off' }, { history: false }],
    ['JWT algorithms, clock tolerance and user claim', ['--jwt-algorithms', 'HS256, HS512', '--jwt-clock-tolerance', '1500ms', '--jwt-user-claim', 'email'], {}, { jwtAlgorithms: ['HS256', 'HS512'], jwtClockToleranceSec: 1.5, jwtUserClaim: 'email' }],
    [
      "the Redis engine's options",
      ['--redis-url', 'redis://127.0.0.1:6379', '--redis-key-prefix', 'app1:', '--redis-shards', '4', '--redis-command-timeout', '500ms', '--redis-connect-timeout', '2s', '--redis-max-reconnect-delay', '5s', '--redis-liveness-interval', '250ms', '--redis-liveness-timeout', '1s', '--redis-tracked-streams', '0', '--redis-lease', '5s'],
      { AUTHSOCKET_REDIS_STREAM_TTL: '48h', AUTHSOCKET_REDIS_REVOCATION_TTL: '168h', AUTHSOCKET_REDIS_IDEMPOTENCY_WINDOW: '1h' },
      {
        redisKeyPrefix: 'app1:',
        redisShards: 4,
        redisCommandTimeoutMs: 500,
        redisConnectTimeoutMs: 2_000,
        redisMaxReconnectDelayMs: 5_000,
        redisLivenessIntervalMs: 250,
        redisLivenessTimeoutMs: 1_000,
        redisTrackedStreams: 0,
        redisStreamTtlMs: 172_800_000,
        redisRevocationTtlMs: 604_800_000,
        redisIdempotencyWindowMs: 3_600_000,
        redisLeaseMs: 5_000,
      },
    ],
    ['the registry off', ['--registry', 'off'], {}, { registry: false }],
    ['the registry off from the environment', [], { AUTHSOCKET_REGISTRY: 'false' }, { registry: false }],
  ];
  for (const [name, args, env, expected] of valid) {
    it(`accepts ${name}`, () => {
      expect(config(args, { ...WITH_SECRET, ...env })).toMatchObject(expected);
    });
  }

  it('reads --jwt-public-key from a file path', () => {
    expect(config(['--jwt-public-key', goodPemPath, '--audience', 'my-app']).jwtPublicKey).toBe(readFileSync(goodPemPath, 'utf8'));
  });

  it('accepts --jwt-public-key as inline PEM from the environment', () => {
    const pem = readFileSync(goodPemPath, 'utf8');
    expect(config([], { AUTHSOCKET_JWT_PUBLIC_KEY: pem, AUTHSOCKET_AUDIENCE: 'none' }).jwtPublicKey).toBe(pem);
  });

  const invalid: [string[], Environment, string][] = [
    [['--reauth-window', 'abc'], {}, 'invalid option --reauth-window (AUTHSOCKET_REAUTH_WINDOW): expected a duration like 30s, got "abc"'],
    [[], { AUTHSOCKET_REAUTH_WINDOW: 'abc' }, 'invalid option --reauth-window (AUTHSOCKET_REAUTH_WINDOW): expected a duration like 30s, got "abc"'],
    [['--reauth-grace', '10'], {}, 'invalid option --reauth-grace (AUTHSOCKET_REAUTH_GRACE): expected a duration like 30s, got "10"'],
    [['--ticket-ttl', '0'], {}, 'invalid option --ticket-ttl (AUTHSOCKET_TICKET_TTL): expected a duration of at least 1ms, got "0"'],
    [['--ticket-ttl', '25h'], {}, 'invalid option --ticket-ttl (AUTHSOCKET_TICKET_TTL): expected a duration of at most 24h, got "25h"'],
    [['--registry', 'maybe'], {}, 'invalid option --registry (AUTHSOCKET_REGISTRY): expected true or false, got "maybe"'],
    [['--redis-url', 'redis://127.0.0.1:6379', '--redis-lease', '100ms'], {}, 'invalid option --redis-lease (AUTHSOCKET_REDIS_LEASE): expected a duration of at least 300ms, got "100ms"'],
    [['--port', '70000'], {}, 'invalid option --port (AUTHSOCKET_PORT): expected a port number from 0 to 65535, got "70000"'],
    [[], { PORT: 'http' }, 'invalid option --port (PORT): expected a port number from 0 to 65535, got "http"'],
    [['--expiry-policy', 'sometimes'], {}, 'invalid option --expiry-policy (AUTHSOCKET_EXPIRY_POLICY): expected one of reauth, close, ignore, got "sometimes"'],
    [['--ticket-mode', 'maybe'], {}, 'invalid option --ticket-mode (AUTHSOCKET_TICKET_MODE): expected one of off, optional, required, got "maybe"'],
    [[], { AUTHSOCKET_LOG_LEVEL: 'loud' }, 'invalid option --log-level (AUTHSOCKET_LOG_LEVEL): expected one of fatal, error, warn, info, debug, trace, silent, got "loud"'],
    [['--jwt-secret', 'too-short'], {}, 'invalid option --jwt-secret (AUTHSOCKET_JWT_SECRET): expected at least 32 bytes, got 9'],
    [[], { AUTHSOCKET_API_KEY: 'abc' }, 'invalid option --api-key (AUTHSOCKET_API_KEY): expected at least 16 characters, got 3'],
    [['--jwks-url', 'ftp://keys.example'], {}, 'invalid option --jwks-url (AUTHSOCKET_JWKS_URL): expected an absolute https:// or http:// URL, got "ftp://keys.example"'],
    [['--redis-url', 'http://user:hunter2@cache'], {}, 'invalid option --redis-url (AUTHSOCKET_REDIS_URL): expected an absolute redis:// or rediss:// URL'],
    [['--upgrade-rate-limit', 'lots'], {}, 'invalid option --upgrade-rate-limit (AUTHSOCKET_UPGRADE_RATE_LIMIT): expected a rate like 300/10s, or off, got "lots"'],
    [['--permission', 'a*b=subscribe'], {}, 'invalid option --permission (AUTHSOCKET_PERMISSION): pattern \'a*b\' has \'*\' before its end: a wildcard may only end a pattern in "a*b=subscribe"'],
    [['--permission', 'ok=subscribe', '--permission', '*x=subscribe'], {}, 'invalid option --permission (AUTHSOCKET_PERMISSION): pattern \'*x\' has \'*\' before its end: a wildcard may only end a pattern in "*x=subscribe"'],
    [['--permission', 'chat:*=read'], {}, 'invalid option --permission (AUTHSOCKET_PERMISSION): expected \'subscribe\', \'publish\' or \'presence\', got \'read\' in "chat:*=read"'],
    [['--permission', 'chat:*'], {}, 'invalid option --permission (AUTHSOCKET_PERMISSION): expected a rule like \'chat:*=subscribe,publish\' or \'admin:*=publish if role=admin\', got "chat:*"'],
    [['--permission', 'chat:*=publish if role'], {}, 'invalid option --permission (AUTHSOCKET_PERMISSION): expected conditions like \'if role=admin,verified=true\', got "chat:*=publish if role"'],
    [[], { AUTHSOCKET_PERMISSION: ' ; ' }, 'invalid option --permission (AUTHSOCKET_PERMISSION): expected at least one value'],
    [['--permissions-claim', 'my claim'], {}, 'invalid option --permissions-claim (AUTHSOCKET_PERMISSIONS_CLAIM): expected a claim name like name, got "my claim"'],
    [['--subscribe-claim', ''], {}, 'invalid option --subscribe-claim (AUTHSOCKET_SUBSCRIBE_CLAIM): expected a claim name like name, got ""'],
    [['--subscribe-topics', ','], {}, "invalid option --subscribe-topics (AUTHSOCKET_SUBSCRIBE_TOPICS): expected '*', '-' or comma-separated topic prefixes like chat:,news:"],
    [['--allowed-origins', 'https://a.example,https://b.example/app'], {}, 'invalid option --allowed-origins (AUTHSOCKET_ALLOWED_ORIGINS): expected origins like https://app.example.com (scheme, host, optional port), got "https://b.example/app"'],
    [['--allowed-origins', ' , '], {}, 'invalid option --allowed-origins (AUTHSOCKET_ALLOWED_ORIGINS): expected a comma-separated list of origins like https://app.example.com'],
    [['--jwt-public-key', '/nonexistent/key.pem'], {}, 'invalid option --jwt-public-key (AUTHSOCKET_JWT_PUBLIC_KEY): expected a PEM public key or the path of a file holding one; cannot read "/nonexistent/key.pem" (ENOENT)'],
    [['--jwt-public-key', notPemPath], {}, `invalid option --jwt-public-key (AUTHSOCKET_JWT_PUBLIC_KEY): expected ${JSON.stringify(notPemPath)} to hold a PEM public key ('-----BEGIN PUBLIC KEY-----')`],
    [[], { AUTHSOCKET_DEMO: 'maybe' }, 'invalid option --demo (AUTHSOCKET_DEMO): expected true or false, got "maybe"'],
    [['--demo=yes'], {}, 'invalid option --demo (AUTHSOCKET_DEMO): takes no value on the command line'],
    [['--port'], {}, 'invalid option --port (AUTHSOCKET_PORT): expected a value after --port'],
    [['--port', '--demo'], {}, 'invalid option --port (AUTHSOCKET_PORT): expected a value after --port'],
    [['--ws-path', 'ws'], {}, 'invalid option --ws-path (AUTHSOCKET_WS_PATH): expected a path starting with /, got "ws"'],
    [['--static-dir', '/nonexistent/site'], {}, 'invalid option --static-dir (AUTHSOCKET_STATIC_DIR): expected an existing directory, got "/nonexistent/site"'],
    [['--issuer', ' '], {}, 'invalid option --issuer (AUTHSOCKET_ISSUER): expected a non-empty value'],
    [['--redis-cluster-nodes', '10.0.0.1'], {}, 'invalid option --redis-cluster-nodes (AUTHSOCKET_REDIS_CLUSTER_NODES): expected host:port pairs like 10.0.0.1:7000, got "10.0.0.1"'],
    [[], { AUTHSOCKET_REDIS_SENTINELS: 'a:26379,b:0' }, 'invalid option --redis-sentinels (AUTHSOCKET_REDIS_SENTINELS): expected host:port pairs like 10.0.0.1:7000, got "b:0"'],
    [['--redis-sentinels', ' , '], {}, 'invalid option --redis-sentinels (AUTHSOCKET_REDIS_SENTINELS): expected comma-separated host:port pairs like 10.0.0.1:7000,10.0.0.2:7000'],
    [['--redis-url', 'redis://127.0.0.1:6380', '--redis-cluster-nodes', '127.0.0.1:7000'], {}, 'invalid option --redis-cluster-nodes (AUTHSOCKET_REDIS_CLUSTER_NODES): conflicts with --redis-url: set exactly one Redis target'],
    [['--redis-sentinels', '127.0.0.1:26379'], { AUTHSOCKET_REDIS_CLUSTER_NODES: '127.0.0.1:7000' }, 'invalid option --redis-sentinels (AUTHSOCKET_REDIS_SENTINELS): conflicts with --redis-cluster-nodes: set exactly one Redis target'],
    [['--redis-password', 'hunter2'], {}, 'invalid option --redis-password (AUTHSOCKET_REDIS_PASSWORD): needs a Redis target: --redis-url, --redis-cluster-nodes, --redis-sentinels'],
    [['--proxy-rpc-url', 'http://127.0.0.1:3000/rpc'], {}, "invalid option --proxy-secret (AUTHSOCKET_PROXY_SECRET): is required with --proxy-rpc-url: the backend tells the gateway's requests by their signature"],
    [['--proxy-secret', 'a-proxy-secret-of-at-least-32-bytes-long'], {}, 'invalid option --proxy-secret (AUTHSOCKET_PROXY_SECRET): needs a --proxy-<event>-url to proxy'],
    [['--proxy-timeout', '2s'], {}, 'invalid option --proxy-timeout (AUTHSOCKET_PROXY_TIMEOUT): needs a --proxy-<event>-url to proxy'],
    [['--proxy-connect-url', 'ftp://backend/connect'], {}, 'invalid option --proxy-connect-url (AUTHSOCKET_PROXY_CONNECT_URL): expected an absolute http:// or https:// URL, got "ftp://backend/connect"'],
    [['--proxy-forward-claims', 'email,ro les'], {}, 'invalid option --proxy-forward-claims (AUTHSOCKET_PROXY_FORWARD_CLAIMS): expected comma-separated claim names like email,roles, got "email,ro les"'],
    [['--max-connections-per-user', '0'], {}, 'invalid option --max-connections-per-user (AUTHSOCKET_MAX_CONNECTIONS_PER_USER): expected a whole number of at least 1, got "0"'],
    [['--trust-proxy', ','], {}, 'invalid option --trust-proxy (AUTHSOCKET_TRUST_PROXY): expected a number of hops, or comma-separated proxy addresses/CIDRs like 10.0.0.0/8'],
    [['--node-id', ' '], {}, 'invalid option --node-id (AUTHSOCKET_NODE_ID): expected a non-empty value'],
    [['--nope', '1'], {}, 'unknown option --nope: see authsocket serve --help'],
    [['--handshake-token=yes'], {}, 'invalid option --handshake-token (AUTHSOCKET_HANDSHAKE_TOKEN): takes no value on the command line'],
    [[], { AUTHSOCKET_PER_MESSAGE_AUTH: 'sometimes' }, 'invalid option --per-message-auth (AUTHSOCKET_PER_MESSAGE_AUTH): expected true or false, got "sometimes"'],
    [['--require-auth-message'], {}, 'invalid option --require-auth-message (AUTHSOCKET_REQUIRE_AUTH_MESSAGE): needs --ticket-mode required (two-layer mode: a ticket, then the auth message)'],
    [['--verification-cache-size', '0'], {}, 'invalid option --verification-cache-size (AUTHSOCKET_VERIFICATION_CACHE_SIZE): expected a whole number of at least 1, got "0"'],
    [['--max-held-messages', 'many'], {}, 'invalid option --max-held-messages (AUTHSOCKET_MAX_HELD_MESSAGES): expected a whole number of at least 1, got "many"'],
    [['--max-payload', '64kb'], {}, 'invalid option --max-payload (AUTHSOCKET_MAX_PAYLOAD): expected a size like 65536, 64KiB or 1MiB (at most 1024MiB), got "64kb"'],
    [[], { AUTHSOCKET_MAX_BUFFERED_BYTES: '0' }, 'invalid option --max-buffered-bytes (AUTHSOCKET_MAX_BUFFERED_BYTES): expected a size like 65536, 64KiB or 1MiB (at most 1024MiB), got "0"'],
    [['--message-rate-limit', 'off'], {}, 'invalid option --message-rate-limit (AUTHSOCKET_MESSAGE_RATE_LIMIT): expected a rate like 1000/1s, got "off"'],
    [['--auth-rate-limit', '10/0'], {}, 'invalid option --auth-rate-limit (AUTHSOCKET_AUTH_RATE_LIMIT): expected a duration of at least 1ms, got "0"'],
    [['--heartbeat-interval', '30'], {}, 'invalid option --heartbeat-interval (AUTHSOCKET_HEARTBEAT_INTERVAL): expected a duration like 30s, got "30"'],
    [['--history', '1000'], {}, 'invalid option --history (AUTHSOCKET_HISTORY): expected entries/age like 1000/5m, or off, got "1000"'],
    [['--jwt-algorithms', 'none'], {}, "invalid option --jwt-algorithms (AUTHSOCKET_JWT_ALGORITHMS): 'none' is never allowed"],
    [['--jwt-algorithms', ','], {}, 'invalid option --jwt-algorithms (AUTHSOCKET_JWT_ALGORITHMS): expected comma-separated JWS algorithms like RS256,ES256, got ","'],
    [['--jwt-clock-tolerance', '2h'], {}, 'invalid option --jwt-clock-tolerance (AUTHSOCKET_JWT_CLOCK_TOLERANCE): expected a duration of at most 1h, got "2h"'],
    [['--jwt-user-claim', ' '], {}, 'invalid option --jwt-user-claim (AUTHSOCKET_JWT_USER_CLAIM): expected a non-empty value'],
    [['--redis-shards', '4'], {}, 'invalid option --redis-shards (AUTHSOCKET_REDIS_SHARDS): needs a Redis target: --redis-url, --redis-cluster-nodes, --redis-sentinels'],
    [['--redis-url', 'redis://127.0.0.1:6379', '--redis-key-prefix', 'a{b}:'], {}, 'invalid option --redis-key-prefix (AUTHSOCKET_REDIS_KEY_PREFIX): expected 1-64 visible characters without { or }, like authsocket:, got "a{b}:"'],
    [['--redis-url', 'redis://127.0.0.1:6379', '--redis-tracked-streams=-1'], {}, 'invalid option --redis-tracked-streams (AUTHSOCKET_REDIS_TRACKED_STREAMS): expected a whole number of at least 0, got "-1"'],
    [['--redis-url', 'redis://127.0.0.1:6379', '--redis-revocation-ttl', '800h'], {}, 'invalid option --redis-revocation-ttl (AUTHSOCKET_REDIS_REVOCATION_TTL): expected a duration of at most 720h, got "800h"'],
    [['--redis-url', 'redis://127.0.0.1:6379', '--redis-stream-ttl', '1m'], {}, 'invalid option --redis-stream-ttl (AUTHSOCKET_REDIS_STREAM_TTL): must be at least the --history age (5m)'],
    [['--redis-url', 'redis://127.0.0.1:6379', '--redis-command-timeout', '0'], {}, 'invalid option --redis-command-timeout (AUTHSOCKET_REDIS_COMMAND_TIMEOUT): expected a duration of at least 1ms, got "0"'],
    [['--issuer', 'x', 'extra'], {}, 'unexpected argument "extra": options are --<name> <value>'],
  ];
  for (const [args, env, message] of invalid) {
    it(`refuses ${JSON.stringify(args.length > 0 ? args : env)}`, () => {
      const error = failure(args, { ...WITH_SECRET, ...env });
      expect(error.message).toBe(message);
      expect(error.code).toBe('ERR_INVALID_OPTION');
    });
  }

  it('never repeats a secret in its message', () => {
    expect(failure(['--jwt-secret', 'hunter2-is-short']).message).not.toContain('hunter2');
    expect(failure([], { AUTHSOCKET_API_KEY: 'hunter2' }).message).not.toContain('hunter2');
    expect(failure(['--redis-url', 'http://user:hunter2@cache']).message).not.toContain('hunter2');
    expect(failure(['--proxy-secret', 'hunter2']).message).not.toContain('hunter2');
    expect(failure(['--redis-password', 'hunter2']).message).not.toContain('hunter2');
  });

  it('prints the configuration with every secret masked and the Redis URL without its password', () => {
    const loaded = config(['--api-key', API_KEY, '--redis-url', 'redis://user:hunter2@127.0.0.1:6380/1'], {
      ...WITH_SECRET,
      AUTHSOCKET_REDIS_PASSWORD: 'other-pass',
    });
    const printed = printableConfig(loaded);
    expect(printed).toMatchObject({
      jwtSecret: '[redacted]',
      apiKey: '[redacted]',
      redisPassword: '[redacted]',
      redisUrl: 'redis://user:***@127.0.0.1:6380/1',
      redisSentinelName: 'mymaster',
    });
    const text = JSON.stringify(printed);
    for (const secret of [SECRET, API_KEY, 'hunter2', 'other-pass']) expect(text).not.toContain(secret);
  });

  it('requires a JWT key source outside demo mode', () => {
    const error = failure([]);
    expect(error.option).toBe('jwt-secret');
    expect(error.message).toBe(
      'missing option: a JWT key is required: set --jwt-secret (AUTHSOCKET_JWT_SECRET), ' +
        '--jwt-public-key (AUTHSOCKET_JWT_PUBLIC_KEY) or --jwks-url (AUTHSOCKET_JWKS_URL), or run with --demo',
    );
  });

  it('refuses two JWT key sources, naming the second', () => {
    const error = failure(['--jwt-secret', SECRET], { AUTHSOCKET_JWKS_URL: 'https://id.example/jwks' });
    expect(error.option).toBe('jwks-url');
    expect(error.message).toBe(
      'invalid option --jwks-url (AUTHSOCKET_JWKS_URL): conflicts with --jwt-secret: set exactly one JWT key source',
    );
  });

  it('refuses a public key in demo mode, whose login signs with a secret', () => {
    expect(failure(['--demo', '--jwt-public-key', goodPemPath]).message).toBe(
      'invalid option --jwt-public-key (AUTHSOCKET_JWT_PUBLIC_KEY): --demo signs its own tokens, so it needs --jwt-secret (or none: it generates one)',
    );
  });

  it('refuses a public key or JWKS without an audience, and takes --audience none as the explicit choice', () => {
    const why = "without it a token your identity provider issued to any of its other clients is accepted; set it to this app's audience, or to none to accept every audience on purpose";
    expect(() => loadConfig(['--jwks-url', 'https://id.example/jwks'], {})).toThrow(`invalid option --audience (AUTHSOCKET_AUDIENCE): is required with --jwks-url: ${why}`);
    expect(() => loadConfig([], { AUTHSOCKET_JWT_PUBLIC_KEY: goodPemPath })).toThrow(`invalid option --audience (AUTHSOCKET_AUDIENCE): is required with --jwt-public-key: ${why}`);
    expect(loadConfig(['--jwks-url', 'https://id.example/jwks', '--audience', 'none'], {}).config.audience).toBe('none');
  });

  it('takes the queue path options, and refuses them without a Redis server, the secret or the stream', () => {
    const FORWARD = 'forward-secret-that-is-at-least-32-bytes!';
    expect(
      config(['--forward-stream', 'authsocket:inbox', '--redis-url', 'redis://127.0.0.1:6379', '--forward-max-length', '5000', '--forward-partitions', '4', '--forward-claims', 'role'], {
        ...WITH_SECRET,
        AUTHSOCKET_FORWARD_SECRET: FORWARD,
      }),
    ).toMatchObject({ forwardStream: 'authsocket:inbox', forwardSecret: FORWARD, forwardMaxLength: 5000, forwardPartitions: 4, forwardClaims: ['role'] });
    expect(failure(['--forward-stream', 's', '--forward-secret', FORWARD], WITH_SECRET).message).toBe(
      "invalid option --forward-stream (AUTHSOCKET_FORWARD_STREAM): needs --redis-url: the stream lives in the gateway's Redis",
    );
    expect(failure(['--forward-stream', 's', '--redis-cluster-nodes', '127.0.0.1:7000', '--forward-secret', FORWARD], WITH_SECRET).message).toContain(
      'Cluster and Sentinel are not supported',
    );
    expect(failure(['--forward-stream', 's', '--redis-url', 'redis://127.0.0.1:6379'], WITH_SECRET).message).toBe(
      "invalid option --forward-secret (AUTHSOCKET_FORWARD_SECRET): is required with --forward-stream: workers tell the gateway's entries by their signature",
    );
    expect(failure(['--forward-secret', FORWARD], WITH_SECRET).message).toBe('invalid option --forward-secret (AUTHSOCKET_FORWARD_SECRET): needs --forward-stream');
    expect(failure(['--forward-partitions', '2'], WITH_SECRET).message).toBe('invalid option --forward-partitions (AUTHSOCKET_FORWARD_PARTITIONS): needs --forward-stream');
    expect(failure(['--forward-max-length', '0'], WITH_SECRET).message).toBe(
      'invalid option --forward-max-length (AUTHSOCKET_FORWARD_MAX_LENGTH): expected a whole number of at least 1, got "0"',
    );
    expect(failure(['--forward-secret', 'short-secret-hunter2'], WITH_SECRET).message).not.toContain('hunter2');
    const printed = printableConfig(config(['--forward-stream', 's', '--redis-url', 'redis://127.0.0.1:6379', '--forward-secret', FORWARD], WITH_SECRET));
    expect(JSON.stringify(printed)).not.toContain(FORWARD);
  });

  it('takes the presence options, and refuses them without --presence or with a bad value', () => {
    expect(config(['--presence', '--presence-topics', 'chat:*, lobby', '--presence-info-claim', 'name', '--presence-max-members', '50', '--presence-join-leave'], WITH_SECRET)).toMatchObject({
      presence: true,
      presenceTopics: ['chat:*', 'lobby'],
      presenceInfoClaim: 'name',
      presenceMaxMembers: 50,
      presenceJoinLeave: true,
    });
    expect(config([], { ...WITH_SECRET, AUTHSOCKET_PRESENCE: 'true', AUTHSOCKET_PRESENCE_MAX_MEMBERS: '3' })).toMatchObject({ presence: true, presenceMaxMembers: 3 });
    expect(config([], WITH_SECRET)).toMatchObject({ presence: false, presenceTopics: undefined, presenceJoinLeave: false });
    expect(failure(['--presence-max-members', '5'], WITH_SECRET).message).toBe(
      'invalid option --presence-max-members (AUTHSOCKET_PRESENCE_MAX_MEMBERS): needs --presence',
    );
    expect(failure(['--presence-join-leave'], WITH_SECRET).message).toBe('invalid option --presence-join-leave (AUTHSOCKET_PRESENCE_JOIN_LEAVE): needs --presence');
    expect(failure(['--presence', '--presence-max-members', '0'], WITH_SECRET).message).toBe(
      'invalid option --presence-max-members (AUTHSOCKET_PRESENCE_MAX_MEMBERS): expected a whole number of at least 1, got "0"',
    );
    expect(failure(['--presence', '--presence-topics', ' , '], WITH_SECRET).message).toContain('invalid option --presence-topics');
    expect(failure(['--presence', '--presence-info-claim', 'a b'], WITH_SECRET).message).toBe(
      'invalid option --presence-info-claim (AUTHSOCKET_PRESENCE_INFO_CLAIM): expected a claim name like name, got "a b"',
    );
  });

  it('warns about unknown AUTHSOCKET_ variables and ignores others', () => {
    const { warnings } = loadConfig(['--demo'], { AUTHSOCKET_JWT_SECRT: 'typo', HOME: '/root' });
    expect(warnings).toEqual(['unknown environment variable AUTHSOCKET_JWT_SECRT ignored']);
  });
});

describe('the --config file', () => {
  let count = 0;
  function file(content: string | object, mode = 0o600): string {
    const path = join(dir, `config-${(count += 1)}.json`);
    writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content, null, 2), { mode });
    chmodSync(path, mode);
    return path;
  }

  it('takes options by their camelCase flag name, with flag > env > file > default', () => {
    const path = file({ ticketTtl: '45s', reauthWindow: '5s', reauthGrace: '2s', issuer: 'from-file', jwtSecret: SECRET });
    const loaded = loadConfig(['--config', path, '--ticket-ttl', '1m'], { AUTHSOCKET_REAUTH_WINDOW: '7s' });
    expect(loaded.config).toMatchObject({ configFile: path, ticketTtlMs: 60_000, reauthWindowMs: 7_000, reauthGraceMs: 2_000, issuer: 'from-file', authTimeoutMs: 10_000, jwtSecret: SECRET });
    expect(loaded.sources).toMatchObject({ configFile: 'flag', ticketTtlMs: 'flag', reauthWindowMs: 'env', reauthGraceMs: 'file', issuer: 'file', authTimeoutMs: 'default', jwtSecret: 'file' });
  });

  it('is named by AUTHSOCKET_CONFIG too, and --config wins over it', () => {
    const a = file({ issuer: 'a' });
    const b = file({ issuer: 'b' });
    expect(config([], { ...WITH_SECRET, AUTHSOCKET_CONFIG: a }).issuer).toBe('a');
    expect(config(['--config', b], { ...WITH_SECRET, AUTHSOCKET_CONFIG: a }).issuer).toBe('b');
  });

  it('takes JSON numbers, booleans and arrays where they are natural', () => {
    const path = file({ port: 9001, perMessageAuth: true, closeOnLogout: false, maxPayload: 1024, allowedOrigins: ['https://a.example', 'https://b.example'], history: false, upgradeRateLimit: false });
    expect(config(['--config', path], WITH_SECRET)).toMatchObject({ port: 9001, perMessageAuth: true, closeOnLogout: false, maxPayload: 1024, allowedOrigins: ['https://a.example', 'https://b.example'], history: false, upgradeRateLimit: false });
  });

  it('takes --permission rules as an array, one rule an element', () => {
    const path = file({ permission: ['user:{sub}:*=subscribe', 'chat:*=publish if role=admin'], permissionsClaim: 'topics' });
    expect(config(['--config', path], WITH_SECRET)).toMatchObject({
      permissions: [{ topics: 'user:{sub}:*', allow: ['subscribe'] }, { topics: 'chat:*', allow: ['publish'], when: { role: 'admin' } }],
      permissionsClaim: 'topics',
    });
    const bad = file({ permission: ['ok=subscribe', 'a*b=subscribe'] });
    expect(failure(['--config', bad], WITH_SECRET).message).toBe(
      `invalid option --permission (permission in ${bad}): pattern 'a*b' has '*' before its end: a wildcard may only end a pattern in "a*b=subscribe"`,
    );
  });

  const refused: [string, string | object, string][] = [
    ['an unknown key, naming it and the file', { ticketTtl: '30s', ticketTTL: '1m' }, 'unknown key "ticketTTL"; did you mean "ticketTtl"?'],
    ['a flag name with dashes', { 'ticket-ttl': '30s' }, 'unknown key "ticket-ttl"; did you mean "ticketTtl"?'],
    ['a key that is no option', { colour: 'blue' }, 'unknown key "colour" (keys are the flags in camelCase, see authsocket serve --help)'],
    ['config inside the file', { config: 'other.json' }, '"config" cannot be set in a config file'],
    ['a JSON array', '[1, 2]', 'expected a JSON object of options, like {"ticketTtl": "30s"}'],
    ['invalid JSON, with its line and column', '{\n  "port": 8080,\n  "host" "x"\n}', 'not valid JSON at line 3, column 10: unexpected "\\""'],
    ['truncated JSON', '{"port": 8080,', 'not valid JSON at line 1, column 15: unexpected end of file'],
  ];
  for (const [name, content, detail] of refused) {
    it(`refuses ${name}`, () => {
      const path = file(content);
      const error = failure(['--config', path], WITH_SECRET);
      expect(error.message).toBe(`invalid config file ${path}: ${detail}`);
      expect(error.option).toBe('config');
    });
  }

  it('takes the presence options from the file, topics as a JSON array', () => {
    const path = file({ jwtSecret: SECRET, presence: true, presenceTopics: ['chat:*', 'lobby'], presenceJoinLeave: true, presenceMaxMembers: 10 });
    expect(config(['--config', path])).toMatchObject({ presence: true, presenceTopics: ['chat:*', 'lobby'], presenceJoinLeave: true, presenceMaxMembers: 10 });
  });

  it('refuses a missing file', () => {
    expect(failure(['--config', join(dir, 'missing.json')], WITH_SECRET).message).toBe(`invalid config file ${join(dir, 'missing.json')}: cannot read it (ENOENT)`);
  });

  it('names the flag, the key and the file for a bad value, never echoing a secret', () => {
    const path = file({ ticketTtl: 30 });
    expect(failure(['--config', path], WITH_SECRET).message).toBe(`invalid option --ticket-ttl (ticketTtl in ${path}): expected a duration like 30s, got "30"`);
    const secretPath = file({ apiKey: 'hunter2' });
    expect(failure(['--config', secretPath], WITH_SECRET).message).toBe(`invalid option --api-key (apiKey in ${secretPath}): expected at least 16 characters, got 7`);
    const objectPath = file({ history: { maxEntries: 5 } });
    expect(failure(['--config', objectPath], WITH_SECRET).message).toBe(`invalid option --history (history in ${objectPath}): expected a string, a number, a boolean or an array of strings`);
  });

  it('warns when a file holding secrets is readable by others, not when it is private', () => {
    expect(loadConfig(['--config', file({ apiKey: API_KEY }, 0o644)], WITH_SECRET).warnings).toEqual([
      expect.stringMatching(/holds secrets \(apiKey\) and is readable by others \(mode 644\): chmod 600 it$/),
    ]);
    expect(loadConfig(['--config', file({ apiKey: API_KEY }, 0o600)], WITH_SECRET).warnings).toEqual([]);
    expect(loadConfig(['--config', file({ issuer: 'x' }, 0o644)], WITH_SECRET).warnings).toEqual([]);
  });
});

describe('startGateway configuration errors', () => {
  it("rewrites the server library's refusal in terms of the CLI option", async () => {
    const weak = join(dir, 'weak.pem');
    writeFileSync(weak, rsa(1024));
    const { config: loaded } = loadConfig(['--jwt-public-key', weak, '--audience', 'none', '--port', '0', '--log-level', 'silent'], {});
    await expect(startGateway(loaded)).rejects.toThrow(
      new InvalidOptionError('jwt-public-key', 'invalid option --jwt-public-key (AUTHSOCKET_JWT_PUBLIC_KEY): RSA keys must be at least 2048 bits'),
    );
  });

  const refusedAtStart: [string[], string][] = [
    [['--trust-proxy', '10.0.0.0/33'], "invalid option --trust-proxy (AUTHSOCKET_TRUST_PROXY): expected an IP address or CIDR, got '10.0.0.0/33'"],
    [['--trust-proxy', '99'], 'invalid option --trust-proxy (AUTHSOCKET_TRUST_PROXY): expected a number of hops from 0 to 32, or a list of addresses/CIDRs, got 99'],
    [['--node-id', 'node one'], 'invalid option --node-id (AUTHSOCKET_NODE_ID): expected 1-128 letters, digits or . _ : -'],
    [['--jwks-timeout', '2s'], 'invalid option --jwks-timeout (AUTHSOCKET_JWKS_TIMEOUT): applies only with jwksUrl'],
    [['--jwt-algorithms', 'RS256'], "invalid option --jwt-algorithms (AUTHSOCKET_JWT_ALGORITHMS): 'RS256' cannot be used with a secret; allowed: HS256, HS384, HS512"],
  ];
  for (const [args, message] of refusedAtStart) {
    it(`reports the server library's refusal of ${args.join(' ')} under the flag`, async () => {
      const { config: loaded } = loadConfig([...args, '--jwt-secret', SECRET, '--port', '0', '--log-level', 'silent'], {});
      await expect(startGateway(loaded)).rejects.toThrow(new InvalidOptionError(args[0]?.slice(2) ?? '', message));
    });
  }
});

describe('the README', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  it('holds exactly the options table generated from OPTIONS (node packages/gateway/scripts/options-table.mjs --write)', () => {
    const begin = readme.indexOf('<!-- options:begin');
    const end = readme.indexOf(OPTIONS_TABLE_END) + OPTIONS_TABLE_END.length;
    expect(begin).toBeGreaterThan(0);
    expect(readme.slice(begin, end)).toBe(optionsTable());
    expect(withOptionsTable(readme)).toBe(readme);
  });
  for (const spec of OPTIONS) {
    it(`documents --${spec.flag}, ${spec.env} and its file key ${spec.fileKey} in the table`, () => {
      const row = optionsTable().split('\n').find((line) => line.startsWith(`| \`--${spec.flag}`));
      expect(row).toContain(`\`${spec.env}\``);
      if (spec.key !== 'configFile') expect(row).toContain(`\`${spec.fileKey}\``);
    });
  }
});

describe('the library options reachable from the CLI', () => {
  const keys = new Set<string>(OPTIONS.map((spec) => spec.key));
  const tables: [string, readonly string[], Readonly<Record<string, LibraryMapping>>][] = [
    ['createGateway (GATEWAY_OPTIONS)', Object.keys(GATEWAY_OPTIONS), GATEWAY_OPTION_SOURCES],
    ['jwt (JwtOptions)', Object.keys(JWT_OPTION_SOURCES), JWT_OPTION_SOURCES],
    ['createRedisEngine (RedisEngineOptions)', Object.keys(REDIS_ENGINE_OPTION_SOURCES), REDIS_ENGINE_OPTION_SOURCES],
  ];
  for (const [name, libraryKeys, sources] of tables) {
    it(`maps every option of ${name} to CLI options, or excludes it with a reason`, () => {
      for (const key of libraryKeys) {
        const mapping = sources[key];
        expect(mapping, `${name}: ${key} is neither mapped nor excluded`).toBeDefined();
        if (mapping && 'excluded' in mapping) expect(mapping.excluded.length).toBeGreaterThan(10);
        else for (const target of mapping as readonly string[]) expect(keys, `${key} -> ${target}`).toContain(target);
      }
      expect(Object.keys(sources).sort()).toEqual([...libraryKeys].sort());
    });
  }

  it('excludes only objects and callbacks', () => {
    const excluded = Object.entries(GATEWAY_OPTION_SOURCES).filter(([, mapping]) => 'excluded' in mapping).map(([key]) => key);
    // connectionStore: an object too, but --registry off turns it off (false).
    expect(excluded.sort()).toEqual(['authorize', 'broker', 'clock', 'handler', 'logger', 'onMessage', 'presenceStore', 'revocationStore', 'ticketStore']);
  });

  it("takes the defaults from the libraries' tables", () => {
    const defaults = config([], WITH_SECRET);
    for (const [key, mapping] of Object.entries(GATEWAY_OPTION_SOURCES)) {
      const spec = GATEWAY_OPTIONS[key as keyof typeof GATEWAY_OPTIONS] as { default?: unknown };
      if ('excluded' in mapping || mapping.length !== 1 || typeof spec.default === 'function' || spec.default === undefined) continue;
      const target = mapping[0] as keyof GatewayConfig;
      if (defaults[target] !== undefined) expect(defaults[target], key).toEqual(spec.default);
    }
    expect(defaults.redisShards).toBe(REDIS_ENGINE_DEFAULTS.shards);
    expect(defaults.redisStreamTtlMs).toBe(REDIS_ENGINE_DEFAULTS.streamTtlMs);
  });
});
