import { CloseCode, LIMITS, SUBPROTOCOL } from '@authsocket/protocol';
import { describe, expect, it } from 'vitest';
import { AuthSocket, type ConnectionState, QueueFullError, UnauthorizedError } from '../src/index.js';
import { StreamPositions } from '../src/positions.js';
import { nextStep } from '../src/reconnect.js';
import { BoundedQueue } from '../src/queue.js';
import { singleFlight } from '../src/single-flight.js';
import { canTransition, TRANSITIONS } from '../src/state.js';
import { connectionTarget } from '../src/transport.js';
import { WebSocket } from 'ws';

describe('singleFlight', () => {
  it('gives concurrent callers one shared call', async () => {
    let calls = 0;
    let release!: (value: string) => void;
    const get = singleFlight(() => {
      calls++;
      return new Promise<string>((resolve) => {
        release = resolve;
      });
    });
    const results = Promise.all([get(), get(), get()]);
    release('token-1');
    expect(await results).toEqual(['token-1', 'token-1', 'token-1']);
    expect(calls).toBe(1);
  });

  it('starts a new call once the previous one settled', async () => {
    let calls = 0;
    const get = singleFlight(async () => `token-${++calls}`);
    expect(await get()).toBe('token-1');
    expect(await get()).toBe('token-2');
  });

  it('shares a rejection with every concurrent caller and recovers afterwards', async () => {
    let calls = 0;
    const get = singleFlight(async () => {
      calls++;
      if (calls === 1) throw new UnauthorizedError();
      return 'ok';
    });
    const outcomes = await Promise.allSettled([get(), get()]);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected']);
    expect(await get()).toBe('ok');
    expect(calls).toBe(2);
  });
});

describe('BoundedQueue', () => {
  it('drains items in the order they were pushed', () => {
    const queue = new BoundedQueue<number>(5);
    for (const n of [3, 1, 2]) queue.push(n);
    expect(queue.drain()).toEqual([3, 1, 2]);
    expect(queue.size).toBe(0);
  });

  it('throws QueueFullError with its limit when full, and keeps what it had', () => {
    const queue = new BoundedQueue<string>(2);
    queue.push('a');
    queue.push('b');
    const error = (() => {
      try {
        queue.push('c');
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(QueueFullError);
    expect(error).toMatchObject({ code: 'ERR_QUEUE_FULL', limit: 2, name: 'QueueFullError', message: 'outbound queue is full (2 frames)' });
    expect(queue.drain()).toEqual(['a', 'b']);
  });

  it('refuses a negative or fractional limit', () => {
    expect(() => new BoundedQueue(-1)).toThrow(RangeError);
    expect(() => new BoundedQueue(1.5)).toThrow(RangeError);
  });
});

describe('state transitions', () => {
  it('follow the documented path idle -> connecting -> authenticating -> open -> reauthenticating -> open', () => {
    const path: ConnectionState[] = ['idle', 'connecting', 'authenticating', 'open', 'reauthenticating', 'open', 'closed'];
    for (let i = 1; i < path.length; i++) expect(canTransition(path[i - 1]!, path[i]!)).toBe(true);
  });

  it('never lead out of closed except to connecting', () => {
    expect(TRANSITIONS.closed).toEqual(['connecting']);
  });

  it('let every state but closed reach closed', () => {
    for (const state of Object.keys(TRANSITIONS) as ConnectionState[]) {
      if (state !== 'closed') expect(canTransition(state, 'closed')).toBe(true);
    }
  });

  it('refuse shortcuts that skip authentication', () => {
    expect(canTransition('connecting', 'open')).toBe(false);
    expect(canTransition('reconnecting', 'open')).toBe(false);
    expect(canTransition('idle', 'open')).toBe(false);
  });
});

describe('StreamPositions', () => {
  it('accepts messages without stream coordinates', () => {
    const positions = new StreamPositions();
    expect(positions.accept({})).toBe(true);
    expect(positions.accept({ stream: 's' })).toBe(true);
    expect(positions.toResume()).toBeUndefined();
  });

  it('drops a message whose offset is not past the last one seen in the same epoch', () => {
    const positions = new StreamPositions();
    expect(positions.accept({ stream: 's', epoch: 'e1', offset: 1 })).toBe(true);
    expect(positions.accept({ stream: 's', epoch: 'e1', offset: 2 })).toBe(true);
    expect(positions.accept({ stream: 's', epoch: 'e1', offset: 2 })).toBe(false);
    expect(positions.accept({ stream: 's', epoch: 'e1', offset: 1 })).toBe(false);
    expect(positions.toResume()).toEqual({ s: { epoch: 'e1', offset: 2 } });
  });

  it('starts over when the epoch changes', () => {
    const positions = new StreamPositions();
    positions.accept({ stream: 's', epoch: 'e1', offset: 9 });
    expect(positions.accept({ stream: 's', epoch: 'e2', offset: 0 })).toBe(true);
    expect(positions.toResume()).toEqual({ s: { epoch: 'e2', offset: 0 } });
  });

  it('keeps at most the protocol limit of streams, forgetting the least recently updated', () => {
    const positions = new StreamPositions();
    for (let i = 0; i <= LIMITS.resumeStreams; i++) positions.accept({ stream: `s${i}`, epoch: 'e', offset: 1 });
    const resume = positions.toResume() ?? {};
    expect(Object.keys(resume)).toHaveLength(LIMITS.resumeStreams);
    expect(resume.s0).toBeUndefined();
    expect(resume[`s${LIMITS.resumeStreams}`]).toEqual({ epoch: 'e', offset: 1 });
  });
});

describe('connectionTarget', () => {
  it('offers the ticket as a subprotocol entry by default and keeps it out of the URL', () => {
    const target = connectionTarget('ws://h/ws', { ticket: 'T' }, { ticket: 'protocol', token: 'protocol' });
    expect(target).toEqual({ url: 'ws://h/ws', protocols: [SUBPROTOCOL, 'ticket.T'] });
  });

  it('puts credentials in the query when asked to', () => {
    const target = connectionTarget('ws://h/ws?x=1', { ticket: 'T', token: 'J' }, { ticket: 'query', token: 'query' });
    expect(target).toEqual({ url: 'ws://h/ws?x=1&ticket=T&token=J', protocols: [SUBPROTOCOL] });
  });

  it('offers a handshake token as token.<jwt>', () => {
    const target = connectionTarget('ws://h/', { token: 'a.b.c' }, { ticket: 'protocol', token: 'protocol' });
    expect(target.protocols).toEqual([SUBPROTOCOL, 'token.a.b.c']);
  });
});

describe('AuthSocket options', () => {
  const base = { url: 'ws://127.0.0.1:1/', WebSocket };
  const invalid: Array<[string, Record<string, unknown>, RegExp]> = [
    ['an http URL', { url: 'http://x/' }, /option 'url'/],
    ['a URL that does not parse', { url: 'not a url' }, /option 'url'/],
    ['auth together with token', { auth: { token: 't' }, token: 't' }, /options 'auth' and 'token' conflict/],
    ['auth together with ticket', { auth: { token: 't' }, ticket: 't' }, /options 'auth' and 'ticket' conflict/],
    ['a negative minimum delay', { minReconnectDelayMs: -1 }, /option 'minReconnectDelayMs'/],
    ['a minimum above the maximum', { minReconnectDelayMs: 10, maxReconnectDelayMs: 5 }, /conflict: min is above max/],
    ['a fractional attempt bound', { maxReconnectAttempts: 1.5 }, /option 'maxReconnectAttempts'/],
    ['an infinite queue', { maxQueueSize: Infinity }, /option 'maxQueueSize'/],
    ['an unknown setAuth strategy', { setAuthStrategy: 'sometimes' }, /option 'setAuthStrategy'/],
  ];
  for (const [what, options, message] of invalid) {
    it(`refuses ${what} with a TypeError naming the option`, () => {
      expect(() => new AuthSocket({ ...base, ...options } as never)).toThrow(message);
    });
  }

  it('refuses to start without a WebSocket implementation when there is no global one', () => {
    expect((globalThis as { WebSocket?: unknown }).WebSocket).toBeUndefined();
    expect(() => new AuthSocket({ url: 'ws://127.0.0.1:1/' })).toThrow(/no WebSocket implementation/);
  });

  it('starts idle and stays idle until connect()', () => {
    const client = new AuthSocket({ ...base, token: 't' });
    expect(client.state).toBe('idle');
    expect(client.getSnapshot()).toEqual({ state: 'idle' });
    client.close();
    expect(client.getSnapshot()).toEqual({ state: 'closed', code: CloseCode.Normal, reason: 'client closed' });
  });
});

describe('nextStep', () => {
  it('follows the close table: stop, back off, wait the hint, or refresh', () => {
    const refresh = (granted: boolean) => () => granted;
    expect(nextStep('stop', 500, refresh(true))).toEqual({ stop: 'closed' });
    expect(nextStep('backoff', 500, refresh(true))).toEqual({ retryIn: 'backoff' });
    expect(nextStep('retry-after', 500, refresh(true))).toEqual({ retryIn: 500 });
    expect(nextStep('retry-after', undefined, refresh(true))).toEqual({ retryIn: 'backoff' });
    for (const action of ['refresh-once', 'refresh-now'] as const) {
      expect(nextStep(action, undefined, refresh(true))).toEqual({ retryIn: 0 });
      expect(nextStep(action, undefined, refresh(false))).toEqual({ stop: 'unauthenticated' });
    }
  });

  it('asks for fresh credentials only on a refresh action', () => {
    let asked = 0;
    const refresh = () => ++asked > 0;
    for (const action of ['stop', 'backoff', 'retry-after'] as const) nextStep(action, undefined, refresh);
    expect(asked).toBe(0);
  });
});
