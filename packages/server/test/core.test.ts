import { CloseCode, MessageType, ProtocolError, TICKET_PROTOCOL_PREFIX, TOKEN_PROTOCOL_PREFIX } from '@authsocket/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import {
  classify,
  ConfigError,
  OutcomeUnknownError,
  RevokedError,
  StoreUnavailableError,
  TicketError,
  TokenError,
} from '../src/errors.js';
import type { GatewayEvents } from '../src/events.js';
import type { MessageHandler } from '../src/core/ports.js';
import { describeOptions } from '../src/options.js';
import { memoryGateway, type MemorySocket, until, upgradeRequest } from './memory-transport.js';

type Core = ReturnType<typeof memoryGateway>;
let current: Core | undefined;

function start(options: Parameters<typeof memoryGateway>[0] = {}): Core {
  current = memoryGateway(options);
  return current;
}

afterEach(async () => {
  await current?.gateway.close();
  current = undefined;
});

async function authenticate(core: Core, socket: MemorySocket, user = 'alice', expiresIn = 300): Promise<void> {
  socket.receive({ type: MessageType.Auth, token: await core.token(user, expiresIn) });
  await until(() => socket.types().includes(MessageType.AuthOk) || socket.closedWith !== undefined);
  expect(socket.closedWith).toBeUndefined();
}

describe('admission decides upgrades as values', () => {
  it('refuses a request that does not offer the subprotocol with 400', () => {
    const { transport } = start();
    expect(transport.admit({ url: '/', remoteAddress: undefined, header: () => undefined })).toEqual({ status: 400 });
  });

  it('answers 404 for another path, 403 for a foreign origin, 401 without a required ticket', () => {
    const failures: Array<GatewayEvents['authFailed'][0]> = [];
    const { transport, gateway } = start({ path: '/ws', allowedOrigins: ['https://app.example'], ticket: 'required' });
    gateway.on('authFailed', (event) => failures.push(event));
    expect(transport.admit(upgradeRequest('/other'))).toEqual({ status: 404 });
    expect(transport.admit(upgradeRequest('/ws', { origin: 'https://evil.example' }))).toEqual({ status: 403 });
    expect(transport.admit(upgradeRequest('/ws', { origin: 'https://app.example' }))).toEqual({ status: 401 });
    expect(failures).toEqual([{ stage: 'upgrade', reason: 'missing' }]);
  });

  it('admits at once, without a promise, when the first message will authenticate', () => {
    const { transport } = start();
    expect(transport.admit(upgradeRequest())).toEqual({ status: 101, identity: undefined, method: undefined, resume: undefined });
  });

  it('verifies a handshake token before admitting, and refuses a bad one with 401', async () => {
    const core = start({ handshakeToken: true });
    const admitted = await core.transport.admit(upgradeRequest('/', {}, [`${TOKEN_PROTOCOL_PREFIX}${await core.token('bob')}`]));
    expect(admitted).toMatchObject({ status: 101, method: 'handshake_token', identity: { user: 'bob' } });
    const refused = await core.transport.admit(upgradeRequest('/', {}, [`${TOKEN_PROTOCOL_PREFIX}not.a.jwt`]));
    expect(refused).toEqual({ status: 401 });
  });

  it('refuses an unknown ticket with 401', async () => {
    const { transport } = start();
    const refused = await transport.admit(upgradeRequest('/', {}, [`${TICKET_PROTOCOL_PREFIX}${'a'.repeat(43)}`]));
    expect(refused).toEqual({ status: 401 });
  });

  it('stops accepting once closing', async () => {
    const { transport, gateway } = start();
    expect(transport.accepting).toBe(true);
    await gateway.close();
    expect(transport.accepting).toBe(false);
  });
});

describe('a connection moves through its states', () => {
  it('is pending until auth, then authenticated and indexed under its user', async () => {
    const core = start();
    const socket = await core.connect();
    expect(core.gateway.stats()).toMatchObject({ connections: 1, authenticated: 0 });
    expect(core.gateway.connectionCount('alice')).toBe(0);
    await authenticate(core, socket);
    expect(socket.sent.at(-1)).toMatchObject({ type: MessageType.AuthOk, user: 'alice' });
    expect(core.gateway.stats()).toMatchObject({ connections: 1, authenticated: 1 });
    expect(core.gateway.connectionCount('alice')).toBe(1);
  });

  it('closes 4408 when no auth comes before the deadline', async () => {
    const core = start({ authTimeoutMs: 1_000 });
    const socket = await core.connect();
    core.clock.advance(999);
    expect(socket.closedWith).toBeUndefined();
    core.clock.advance(1);
    expect(socket.closedWith).toEqual({ code: CloseCode.AuthTimeout, reason: 'authentication timed out' });
  });

  it('holds deliveries once the token expires, and releases them in order on reauth', async () => {
    const core = start({ reauthWindowMs: 0, reauthGraceMs: 60_000 });
    const socket = await core.connect();
    await authenticate(core, socket, 'alice', 10);
    core.clock.advance(10_000);
    expect(socket.sent.at(-1)).toMatchObject({ type: MessageType.ReauthRequired, reason: 'expired' });
    expect(core.gateway.stats()).toMatchObject({ held: 1, heldMessages: 0 });
    expect(await core.gateway.sendToUser('alice', 'one')).toBe(1);
    expect(await core.gateway.sendToUser('alice', 'two')).toBe(1);
    expect(core.gateway.stats()).toMatchObject({ held: 1, heldMessages: 2 });
    const before = socket.sent.length;
    socket.receive({ type: MessageType.Auth, token: await core.token('alice') });
    await until(() => socket.sent.length >= before + 3);
    const after = socket.sent.slice(before);
    expect(after.map((frame) => frame.type)).toEqual([MessageType.AuthOk, MessageType.Message, MessageType.Message]);
    expect(after.slice(1).map((frame) => (frame as { data: unknown }).data)).toEqual(['one', 'two']);
    expect(core.gateway.stats()).toMatchObject({ authenticated: 1, held: 0, heldMessages: 0 });
  });

  it('closes 4419 when a held connection misses the reauth deadline', async () => {
    const core = start({ reauthWindowMs: 0, reauthGraceMs: 5_000 });
    const socket = await core.connect();
    await authenticate(core, socket, 'alice', 10);
    core.clock.advance(10_000);
    core.clock.advance(5_000);
    expect(socket.closedWith).toEqual({ code: CloseCode.TokenExpired, reason: 'reauth deadline missed' });
  });

  it('goes back to pending on logout: out of the indexes, no deliveries, a new auth deadline', async () => {
    const core = start({ authTimeoutMs: 1_000 });
    const socket = await core.connect();
    await authenticate(core, socket);
    socket.receive({ type: MessageType.Subscribe, topic: 'news', id: 's1' });
    await until(() => socket.sent.some((frame) => frame.type === MessageType.Ack));
    socket.receive({ type: MessageType.Logout });
    expect(socket.sent.at(-1)).toEqual({ type: MessageType.LoggedOut });
    expect(core.gateway.connectionCount('alice')).toBe(0);
    expect(await core.gateway.sendToUser('alice', 'after logout')).toBe(0);
    expect(await core.gateway.publish('news', 'after logout')).toBe(0);
    core.clock.advance(1_000);
    expect(socket.closedWith?.code).toBe(CloseCode.AuthTimeout);
  });

  it('reports the close once, with the code the gateway closed with, and leaves every index', async () => {
    const core = start();
    const closes: number[] = [];
    core.gateway.on('close', ({ code }) => closes.push(code));
    const socket = await core.connect();
    await authenticate(core, socket);
    socket.receive({ type: MessageType.Message, data: new Array(0) });
    socket.receive('not a frame' as unknown as object);
    await until(() => closes.length > 0);
    expect(closes).toEqual([CloseCode.BadRequest]);
    expect(core.gateway.stats()).toEqual({ connections: 0, authenticated: 0, held: 0, heldMessages: 0 });
    expect(core.gateway.connectionCount('alice')).toBe(0);
    socket.terminate();
    expect(closes).toEqual([CloseCode.BadRequest]);
  });

  it('refuses a binary frame with 1003', async () => {
    const core = start();
    const socket = await core.connect();
    socket.events?.received(Buffer.from('{}'), true);
    expect(socket.closedWith?.code).toBe(CloseCode.UnsupportedData);
  });

  it('closes a slow reader 4008 instead of buffering past maxBufferedBytes', async () => {
    const core = start({ maxBufferedBytes: 1_024 });
    const socket = await core.connect();
    await authenticate(core, socket);
    socket.bufferedAmount = 2_048;
    expect(await core.gateway.sendToUser('alice', 'x')).toBe(1);
    expect(socket.closedWith).toEqual({ code: CloseCode.SlowConsumer, reason: 'slow consumer' });
  });
});

describe('the registry routes deliveries', () => {
  it('reaches every connection of a user, and only the subscribers of a topic', async () => {
    const core = start();
    const [a1, a2, b] = [await core.connect(), await core.connect(), await core.connect()];
    await authenticate(core, a1, 'alice');
    await authenticate(core, a2, 'alice');
    await authenticate(core, b, 'bob');
    expect(core.gateway.connectionCount('alice')).toBe(2);
    expect(await core.gateway.sendToUser('alice', 'hi')).toBe(2);
    b.receive({ type: MessageType.Subscribe, topic: 'news', id: 's' });
    await until(() => b.sent.some((frame) => frame.type === MessageType.Ack));
    expect(await core.gateway.publish('news', 'n')).toBe(1);
    expect(await core.gateway.broadcast('all')).toBe(3);
    b.receive({ type: MessageType.Unsubscribe, topic: 'news', id: 'u' });
    expect(await core.gateway.publish('news', 'n2')).toBe(0);
    a1.close(CloseCode.Normal, 'bye');
    await until(() => core.gateway.connectionCount('alice') === 1);
    expect(await core.gateway.sendToUser('alice', 'again')).toBe(1);
  });

  it('closes every connection of a revoked user with 4403', async () => {
    const core = start();
    const [a, b] = [await core.connect(), await core.connect()];
    await authenticate(core, a, 'alice');
    await authenticate(core, b, 'bob');
    expect(await core.gateway.revokeUser('alice')).toBe(1);
    expect(a.closedWith).toEqual({ code: CloseCode.Forbidden, reason: 'revoked' });
    expect(b.closedWith).toBeUndefined();
  });
});

describe('the message port', () => {
  it('gives onMessage a context that replies, publishes and closes', async () => {
    const handler: MessageHandler = {
      async onMessage(context) {
        if (context.data === 'close') return context.close(CloseCode.Normal, 'asked to');
        context.reply({ echo: context.data, user: context.user });
        await context.publish('room', context.data);
      },
    };
    const core = start({ handler });
    const [alice, bob] = [await core.connect(), await core.connect()];
    await authenticate(core, alice, 'alice');
    await authenticate(core, bob, 'bob');
    bob.receive({ type: MessageType.Subscribe, topic: 'room', id: 's' });
    await until(() => bob.sent.some((frame) => frame.type === MessageType.Ack));
    alice.receive({ type: MessageType.Message, data: 'hello', id: 'm1' });
    await until(() => alice.sent.some((frame) => frame.type === MessageType.Ack));
    expect(alice.sent.filter((frame) => frame.type === MessageType.Message)).toEqual([{ type: 'message', data: { echo: 'hello', user: 'alice' } }]);
    expect(bob.sent.at(-1)).toMatchObject({ type: MessageType.Message, data: 'hello', topic: 'room' });
    alice.receive({ type: MessageType.Message, data: 'close' });
    await until(() => alice.closedWith !== undefined);
    expect(alice.closedWith).toEqual({ code: CloseCode.Normal, reason: 'asked to' });
  });

  it('lets onSubscribe refuse a topic, which answers error {code: forbidden}', async () => {
    const topics: string[] = [];
    const core = start({
      handler: {
        onSubscribe: ({ topic, user }) => {
          topics.push(`${user}:${topic}`);
          return topic !== 'secret';
        },
      },
    });
    const socket = await core.connect();
    await authenticate(core, socket);
    socket.receive({ type: MessageType.Subscribe, topic: 'secret', id: 's' });
    await until(() => socket.sent.some((frame) => frame.type === MessageType.Error));
    expect(socket.sent.at(-1)).toMatchObject({ type: MessageType.Error, id: 's', code: 'forbidden' });
    expect(topics).toEqual(['alice:secret']);
    expect(await core.gateway.publish('secret', 'x')).toBe(0);
  });

  it("refuses 'handler' together with 'onMessage'", () => {
    expect(() => memoryGateway({ handler: {}, onMessage: () => undefined })).toThrow(
      new ConfigError('handler', "give either 'handler' or 'onMessage', not both"),
    );
  });
});

describe('classify', () => {
  it.each([
    [new TokenError('expired'), { reason: 'expired', closeCode: CloseCode.Unauthorized, message: 'invalid token', httpStatus: 401 }],
    [new RevokedError(), { reason: 'revoked', closeCode: CloseCode.Forbidden, message: 'revoked', httpStatus: 401 }],
    [new TicketError(), { reason: 'ticket_invalid', closeCode: CloseCode.Unauthorized, message: 'invalid ticket', httpStatus: 401 }],
    [new StoreUnavailableError(), { reason: 'unavailable', closeCode: CloseCode.InternalError, message: 'service unavailable', httpStatus: 503 }],
    [new OutcomeUnknownError(), { reason: 'outcome_unknown', closeCode: CloseCode.InternalError, message: 'publish outcome unknown', httpStatus: 504 }],
    [new ProtocolError('bad id', CloseCode.BadRequest), { reason: 'protocol', closeCode: CloseCode.BadRequest, message: 'bad id', httpStatus: 400 }],
    [new ConfigError('x', 'y'), { reason: 'invalid_option', closeCode: CloseCode.InternalError, message: 'internal error', httpStatus: 500 }],
    [new Error('secret detail'), { reason: 'unknown', closeCode: CloseCode.InternalError, message: 'internal error', httpStatus: 500 }],
  ])('answers %s the same way at every edge', (error, expected) => {
    expect(classify(error)).toEqual(expected);
  });
});

describe('the options table', () => {
  it('describes every option once, with its type and default', () => {
    const described = describeOptions();
    const names = described.map((entry) => entry.name);
    expect(new Set(names).size).toBe(names.length);
    expect(described.find((entry) => entry.name === 'ticketTtlMs')).toEqual({
      name: 'ticketTtlMs',
      type: 'ms',
      default: 30_000,
      description: 'Ticket lifetime.',
    });
    expect(described.find((entry) => entry.name === 'history')?.default).toEqual({ maxEntries: 1_000, maxAgeMs: 300_000 });
    expect(described.find((entry) => entry.name === 'jwt')?.default).toBeUndefined();
  });

  it.each([
    [{ ticketTtlMs: 0 }, "invalid option 'ticketTtlMs': expected a positive integer, got 0"],
    [{ reauthGraceMs: -1 }, "invalid option 'reauthGraceMs': expected a non-negative integer, got -1"],
    [{ ticket: 'sometimes' }, "invalid option 'ticket': expected 'off', 'optional' or 'required', got 'sometimes'"],
    [{ messageRateLimit: { limit: 1, windowMs: 0.5 } }, "invalid option 'messageRateLimit.windowMs': expected a positive integer, got 0.5"],
    [{ history: { maxEntries: 0 } }, "invalid option 'history.maxEntries': expected a positive integer, got 0"],
    [{ path: 'ws' }, "invalid option 'path': expected a path starting with '/', got 'ws'"],
  ])('refuses %o by name', (options, message) => {
    expect(() => memoryGateway(options as never)).toThrow(message);
  });
});
