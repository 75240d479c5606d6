import { CLOSE_CODES } from '@authsocket/protocol';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, TestSocket, type TestServer } from './helpers.js';

/** Frame sequences per property; raise for a longer fuzz: `FUZZ_RUNS=5000 npx vitest run fuzz`. */
const runs = Math.max(10, Math.floor(Number(process.env.FUZZ_RUNS ?? 500) / 10));

let server: TestServer;
let canary: TestSocket;
let goodToken: string;
let otherToken: string;

beforeAll(async () => {
  server = await startServer({
    perMessageAuth: false,
    // Every run opens a socket from 127.0.0.1: a long fuzz must not meet the per-address upgrade limit.
    upgradeRateLimit: false,
    // The canary's room is the canary's alone: a fuzzing socket subscribing to it would rightly see its messages.
    authorize: (user, _action, topic) => topic !== 'secret' && (topic !== 'canary-room' || user === 'canary'),
    onMessage: ({ connection, data }) => {
      if (data === 'throw') throw new Error('handler failure');
      connection.send({ echo: data });
    },
  });
  canary = await TestSocket.authenticated(server, 'canary');
  canary.send({ type: 'subscribe', topic: 'canary-room', id: 'c' });
  await canary.next('ack');
  goodToken = await server.token('fuzzer');
  otherToken = await server.token('canary');
});
afterAll(async () => {
  canary.close();
  await server.close();
});

const KNOWN_CLOSE_CODES = new Set([...Object.keys(CLOSE_CODES).map(Number), 1005]);

/** Frames a fuzzing client may send: valid, near-valid and hostile. */
const frame = fc.oneof(
  fc.constant({ type: 'auth', token: '<good>' }),
  fc.constant({ type: 'auth', token: '<other>' }),
  fc.record({ type: fc.constant('auth'), token: fc.string({ maxLength: 50 }) }),
  fc.record({ type: fc.constant('message'), data: fc.jsonValue({ maxDepth: 3 }), id: fc.string({ minLength: 1, maxLength: 8 }) }),
  fc.constant({ type: 'message', data: 'throw', id: 'x' }),
  fc.record({ type: fc.constant('subscribe'), topic: fc.constantFrom('room', 'secret', 'canary-room'), id: fc.constant('s') }),
  fc.record({ type: fc.constant('unsubscribe'), topic: fc.constantFrom('room', 'canary-room') }),
  fc.record({ type: fc.constant('publish'), topic: fc.constantFrom('room', 'secret'), data: fc.jsonValue({ maxDepth: 2 }) }),
  fc.constant({ type: 'logout' }),
  fc.record({ type: fc.constant('ping'), id: fc.string({ minLength: 1, maxLength: 8 }) }),
  fc.jsonValue({ maxDepth: 3 }),
  fc.string({ maxLength: 40 }),
);

describe('server message handling fuzzing (fast-check, real sockets)', () => {
  it('never crashes, closes only with documented codes, and never leaks another user’s messages', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 12 }), async (frames) => {
        const socket = await TestSocket.open(server.wsUrl);
        for (const item of frames) {
          if (socket.ws.readyState !== socket.ws.OPEN) break;
          const text = typeof item === 'string' ? item : JSON.stringify(item);
          socket.send(text.replace('<good>', goodToken).replace('<other>', otherToken));
        }
        await socket.settle();
        // A push to the canary user and its room must reach the canary and never the fuzzing socket.
        const received = canary.frames.filter((f) => f.type === 'message').length;
        expect(await server.gateway.sendToUser('canary', 'for canary')).toBeGreaterThanOrEqual(1);
        await server.gateway.publish('canary-room', 'for canary room');
        const after = await canary.collect('message', received + 2);
        expect(after.slice(received).map((f) => f.data)).toEqual(['for canary', 'for canary room']);
        socket.close();
        const { code } = await socket.closed;
        expect(KNOWN_CLOSE_CODES.has(code)).toBe(true);
        const leaked = socket.frames.some(
          (f) => f.type === 'message' && (f.data === 'for canary' || f.data === 'for canary room'),
        );
        const authenticatedAsCanary = socket.frames.some((f) => f.type === 'auth_ok' && f.user === 'canary');
        // Only a socket that itself proved to be `canary` may see canary's messages.
        if (!authenticatedAsCanary) expect(leaked).toBe(false);
      }),
      { numRuns: runs },
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
