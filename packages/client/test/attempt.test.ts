import { SUBPROTOCOL } from '@authsocket/protocol';
import { describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { Attempt } from '../src/attempt.js';
import type { Wait } from '../src/backoff.js';
import { sleep } from '../src/reconnect.js';
import { createClient, gate, heldRefresh, record, recordingWebSocket, startServer, stateReached, until } from './helpers.js';

/** A wait that only ends when its signal aborts, recording the signals it got. */
function endlessWait(): { wait: Wait; signals: AbortSignal[] } {
  const signals: AbortSignal[] = [];
  return {
    signals,
    wait: (_ms, signal) => {
      signals.push(signal);
      return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    },
  };
}

describe('Attempt', () => {
  it('ignores every event of its socket once released', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => SUBPROTOCOL });
    await new Promise((resolve) => wss.once('listening', resolve));
    const sent: Array<() => void> = [];
    wss.on('connection', (ws) => {
      ws.on('error', () => {});
      sent.push(() => {
        ws.send('{"type":"pong"}');
        ws.close(1011, 'late');
      });
    });
    try {
      const attempt = new Attempt();
      const heard: string[] = [];
      const opened = gate<void>();
      attempt.open(WebSocket, `ws://127.0.0.1:${(wss.address() as { port: number }).port}/`, [SUBPROTOCOL], {
        open: () => opened.open(),
        frame: () => heard.push('frame'),
        close: () => heard.push('close'),
      });
      await opened.promise;
      await until(() => sent.length === 1, 'the server side of the socket');
      const socket = attempt.release();
      expect(attempt.aborted).toBe(true);
      expect(attempt.socket).toBeUndefined();
      expect(attempt.release()).toBeUndefined();
      sent[0]?.();
      await until(() => socket?.readyState === 3, 'the socket to close');
      expect(heard).toEqual([]);
    } finally {
      for (const ws of wss.clients) ws.terminate();
      await new Promise((resolve) => wss.close(resolve));
    }
  });

  it('aborts its children with it, and a child aborted first lets go of the attempt', () => {
    const attempt = new Attempt();
    const early = attempt.child();
    const late = attempt.child();
    early.abort();
    expect(late.signal.aborted).toBe(false);
    attempt.abort();
    expect(late.signal.aborted).toBe(true);
    expect(attempt.child().signal.aborted).toBe(false);
  });
});

describe('sleep', () => {
  it('ends when any signal aborts, and aborts the signal the wait got', async () => {
    const { wait, signals } = endlessWait();
    const attempt = new AbortController();
    const wake = new AbortController();
    let done = false;
    const slept = sleep(wait, 60_000, attempt.signal, wake.signal).then(() => {
      done = true;
    });
    await Promise.resolve();
    expect(done).toBe(false);
    wake.abort();
    await slept;
    expect(signals[0]?.aborted).toBe(true);
    expect(attempt.signal.aborted).toBe(false);
  });

  it('does not wait at all for an aborted signal', async () => {
    const { wait, signals } = endlessWait();
    await sleep(wait, 60_000, AbortSignal.abort());
    expect(signals.every((signal) => signal.aborted)).toBe(true);
  });
});

describe('a late promise of an aborted attempt', () => {
  it('cannot revive a closed client: a getTicket that resolves after close() opens no socket', async () => {
    const server = await startServer({ ticket: 'required' });
    const slow = gate<string>();
    const client = createClient({ url: server.wsUrl, getTicket: () => slow.promise });
    const log = record(client);
    client.connect();
    client.close();
    slow.open('ticket-that-comes-too-late');
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(client.state).toBe('closed');
    expect(log.states.map((s) => s.newState)).toEqual(['connecting', 'closed']);
    expect(server.upgrades).toHaveLength(0);
  });

  it('cannot take over from a newer attempt: setAuth() while getToken is pending connects once, with the new token', async () => {
    const server = await startServer({ ticket: 'off' });
    const slow = gate<string>();
    const frames = recordingWebSocket();
    const client = createClient({ url: server.wsUrl, getToken: () => slow.promise, WebSocket: frames.WebSocket });
    client.connect();
    expect(client.state).toBe('connecting');
    const bob = await server.token('bob');
    const authenticated = client.setAuth({ token: bob }, { strategy: 'reconnect' });
    await authenticated;
    slow.open(await server.token('alice'));
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(client.getSnapshot()).toMatchObject({ state: 'open', user: 'bob' });
    expect(server.upgrades).toHaveLength(1);
    expect(frames.sockets).toEqual([[{ type: 'auth', token: bob }]]);
  });

  it('sends nothing on the next socket: an in-band refresh that resolves after the drop is dropped', async () => {
    const server = await startServer({ ticket: 'off', reauthWindowMs: 30_000, reauthGraceMs: 10_000 });
    const tokens = heldRefresh(server);
    const frames = recordingWebSocket();
    const client = createClient({ url: server.wsUrl, WebSocket: frames.WebSocket, getToken: tokens.getToken });
    client.connect();
    await stateReached(client, 'open');
    server.clock.advance(31_000);
    await stateReached(client, 'reauthenticating');
    // Past the deadline: the server closes 4419, the reconnect shares the pending getToken call.
    server.clock.advance(40_000);
    await stateReached(client, 'reconnecting');
    tokens.release();
    await stateReached(client, 'open');
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(tokens.calls()).toBe(2);
    expect(frames.sockets).toHaveLength(2);
    expect(frames.sockets[0]?.filter((frame) => frame.type === 'auth')).toHaveLength(1);
    expect(frames.sockets[1]?.filter((frame) => frame.type === 'auth')).toHaveLength(1);
  });

  it('cannot restore what logout() forgot: a getToken that resolves after it is not kept for the next connect()', async () => {
    const server = await startServer({ ticket: 'off' });
    const slow = gate<void>();
    let tokenCalls = 0;
    const client = createClient({
      url: server.wsUrl,
      getToken: async () => {
        tokenCalls++;
        await slow.promise;
        return server.token('alice');
      },
    });
    client.connect();
    await client.logout();
    slow.open();
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(server.upgrades).toHaveLength(0);
    client.connect();
    await stateReached(client, 'open');
    expect(tokenCalls).toBe(2);
  });

  it('cannot revive a client closed by a state listener while setAuth() reconnects', async () => {
    const server = await startServer({ ticket: 'off' });
    const client = createClient({ url: server.wsUrl, token: await server.token() });
    client.connect();
    await stateReached(client, 'open');
    const log = record(client);
    client.on('state', ({ newState }) => {
      if (newState === 'reconnecting') client.close();
    });
    await expect(client.setAuth({ token: await server.token() }, { strategy: 'reconnect' })).rejects.toThrow('client closed');
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(client.state).toBe('closed');
    expect(log.states.map((s) => s.newState)).toEqual(['reconnecting', 'closed']);
    expect(server.upgrades).toHaveLength(1);
  });
});
