import { describe, expect, it } from 'vitest';
import { CancelledError, QueueFullError, RequestRefusedError } from '../src/index.js';
import { createClient, gate, nextEvent, record, startServer, until } from './helpers.js';

describe('outbound frames', () => {
  it('queues sends made before authentication and flushes them in order after auth_ok, after initPayload', async () => {
    const server = await startServer({ ticket: 'required' });
    const client = createClient({
      url: server.wsUrl,
      getTicket: async () => {
        const response = await fetch(`${server.origin}/auth/ticket`, {
          method: 'POST',
          headers: { authorization: `Bearer ${await server.token()}` },
        });
        return ((await response.json()) as { ticket: string }).ticket;
      },
      initPayload: () => ({ hello: 'init' }),
    });
    for (let i = 1; i <= 5; i++) client.send(i);
    const acked = client.send(6, { ack: true });
    client.connect();
    for (let i = 7; i <= 9; i++) client.send(i);
    await acked;
    await until(() => server.received.length === 10, 'all messages');
    expect(server.received).toEqual([{ hello: 'init' }, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('throws QueueFullError from send() and rejects an acknowledged send once the queue is full', async () => {
    const server = await startServer({ ticket: 'off' });
    const client = createClient({ url: server.wsUrl, token: await server.token(), maxQueueSize: 3 });
    client.send('a');
    client.send('b');
    client.publish('room', 'c');
    expect(() => client.send('d')).toThrow(QueueFullError);
    expect(() => client.publish('room', 'd')).toThrow('outbound queue is full (3 frames)');
    await expect(client.send('d', { ack: true })).rejects.toMatchObject({ code: 'ERR_QUEUE_FULL', limit: 3 });
    client.connect();
    await until(() => server.received.length === 2, 'the queued messages');
    expect(server.received).toEqual(['a', 'b']);
    // Once flushed, the queue has room again.
    await expect(client.send('e', { ack: true })).resolves.toBeUndefined();
  });

  it('resolves an acknowledged send only once the application accepted it', async () => {
    const accepted = gate<void>();
    const server = await startServer({ ticket: 'off', onMessage: () => accepted.promise });
    const client = createClient({ url: server.wsUrl, token: await server.token() });
    client.connect();
    await nextEvent(client, 'authenticated');
    let settled = false;
    const ack = client.send('work', { ack: true }).then(() => {
      settled = true;
    });
    await until(() => server.received.length === 1, 'the message to arrive');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(settled).toBe(false);
    accepted.open();
    await ack;
    expect(settled).toBe(true);
  });

  it('rejects an acknowledged send with RequestRefusedError when the application throws', async () => {
    const server = await startServer({
      ticket: 'off',
      onMessage: () => {
        throw new Error('no thanks');
      },
    });
    const client = createClient({ url: server.wsUrl, token: await server.token() });
    const log = record(client);
    client.connect();
    const error = await client.send('x', { ack: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RequestRefusedError);
    expect(error).toMatchObject({ code: 'ERR_REQUEST_REFUSED', reason: 'rejected', message: 'message rejected' });
    // A refusal without a caller to reject is reported as an event.
    client.send('y');
    const reported = await nextEvent(client, 'error');
    expect(reported).toMatchObject({ reason: 'rejected' });
    expect(log.states.at(-1)?.newState).toBe('open');
  });

  it('throws CancelledError for a send after close(), and rejects queued acknowledged sends on close()', async () => {
    const server = await startServer({ ticket: 'off' });
    const client = createClient({ url: server.wsUrl, token: await server.token() });
    const queued = client.send('q', { ack: true });
    client.close();
    await expect(queued).rejects.toThrow(CancelledError);
    expect(() => client.send('late')).toThrow('client is closed');
  });
});

describe('topics', () => {
  it('subscribes, receives publications on the topic and publishes with an ack', async () => {
    const server = await startServer({ ticket: 'off' });
    const client = createClient({ url: server.wsUrl, token: await server.token() });
    client.connect();
    await client.topic('room').subscribe();
    const received = nextEvent(client, 'message');
    await client.publish('room', { text: 'hi' }, { ack: true });
    expect(await received).toMatchObject({ topic: 'room', data: { text: 'hi' }, stream: 'topic:room', offset: 1 });
    // Subscribing again on the same socket resolves at once.
    await client.topic('room').subscribe();
  });

  it('rejects a forbidden subscription with RequestRefusedError and forgets the topic', async () => {
    const server = await startServer({ ticket: 'off', authorize: (_user, _action, topic) => topic !== 'secret' });
    const client = createClient({ url: server.wsUrl, token: await server.token() });
    client.connect();
    const error = await client.topic('secret').subscribe().catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'RequestRefusedError', reason: 'forbidden', message: "not allowed to subscribe to 'secret'" });
    await expect(client.publish('secret', 1, { ack: true })).rejects.toMatchObject({ reason: 'forbidden' });
  });

  it('subscribes again on every new socket, and not after unsubscribe()', async () => {
    const server = await startServer({ ticket: 'off' });
    const client = createClient({ url: server.wsUrl, getToken: () => server.token() });
    client.connect();
    await Promise.all([client.topic('a').subscribe(), client.topic('b').subscribe()]);
    await client.topic('b').unsubscribe();
    expect(await server.gateway.publish('b', 'gone')).toBe(0);
    const back = nextEvent(client, 'authenticated');
    await client.setAuth({ token: await server.token() }, { strategy: 'reconnect' });
    await back;
    expect(await server.gateway.publish('a', 'probe')).toBe(1);
    expect(await server.gateway.publish('b', 'gone')).toBe(0);
  });

  it('rejects a pending subscription with CancelledError when unsubscribed first', async () => {
    const server = await startServer({ ticket: 'off' });
    const client = createClient({ url: server.wsUrl, token: await server.token() });
    const pending = client.topic('room').subscribe();
    await client.topic('room').unsubscribe();
    await expect(pending).rejects.toThrow(CancelledError);
    expect(() => client.topic('')).toThrow(TypeError);
  });
});

describe('an acknowledged send', () => {
  it("resolves with what the application's handler answered in the ack (a queue's entry id), and with nothing otherwise", async () => {
    const server = await startServer({ ticket: 'off', onMessage: ({ data }) => (data === 'queued' ? { entry: '1700000000000-0' } : undefined) });
    const client = createClient({ url: server.wsUrl, token: await server.token() });
    client.connect();
    expect(await client.send('queued', { ack: true })).toEqual({ entry: '1700000000000-0' });
    expect(await client.send('plain', { ack: true })).toBeUndefined();
    expect(await client.publish('room', 'hi', { ack: true })).toBeUndefined();
  });
});
