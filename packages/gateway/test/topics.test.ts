import { afterEach, describe, expect, it } from 'vitest';
import type { TestClient } from './helpers.js';
import { connectAs, SECRET, start, stopAll } from './helpers.js';

afterEach(stopAll);

async function answer(client: TestClient, frame: { type: string; topic: string; id: string; data?: unknown }) {
  client.send(frame);
  return client.next((f) => (f.type === 'ack' || f.type === 'error' || f.type === 'presence') && f.id === frame.id);
}

describe('topic access', () => {
  it('lets clients subscribe to any topic but publish on none by default', async () => {
    const gateway = await start(['--demo', '--jwt-secret', SECRET, '--subscribe-topics', '*']);
    const { client } = await connectAs(gateway, 'alice');
    expect(await answer(client, { type: 'subscribe', topic: 'anything', id: 's' })).toMatchObject({ type: 'ack' });
    expect(await answer(client, { type: 'publish', topic: 'anything', id: 'p', data: 1 })).toMatchObject({
      type: 'error',
      code: 'forbidden',
    });
  });

  it('follows --subscribe-topics and --publish-topics prefixes', async () => {
    const gateway = await start(['--demo', '--jwt-secret', SECRET, '--subscribe-topics', 'news:', '--publish-topics', 'news:']);
    const { client } = await connectAs(gateway, 'alice');
    expect(await answer(client, { type: 'subscribe', topic: 'news:today', id: 's1' })).toMatchObject({ type: 'ack' });
    expect(await answer(client, { type: 'subscribe', topic: 'chat:lobby', id: 's2' })).toMatchObject({ code: 'forbidden' });
    expect(await answer(client, { type: 'publish', topic: 'news:today', id: 'p1', data: 'hi' })).toMatchObject({ type: 'ack' });
    expect(await client.next((f) => f.type === 'message' && f.topic === 'news:today')).toMatchObject({ data: 'hi' });
    expect(await answer(client, { type: 'publish', topic: 'chat:lobby', id: 'p2', data: 'hi' })).toMatchObject({ code: 'forbidden' });
  });

  it('lets a client read the presence of the topics it may subscribe to, and refuses the others', async () => {
    const gateway = await start(['--demo', '--jwt-secret', SECRET, '--subscribe-topics', 'news:', '--publish-topics', '*', '--presence']);
    const { client } = await connectAs(gateway, 'alice');
    expect(await answer(client, { type: 'subscribe', topic: 'news:today', id: 's1' })).toMatchObject({ type: 'ack' });
    expect(await answer(client, { type: 'presence', topic: 'news:today', id: 'p1' })).toMatchObject({
      type: 'presence',
      count: 1,
      members: [{ user: 'alice' }],
    });
    // Publishing is allowed everywhere, reading presence is not: it follows --subscribe-topics.
    expect(await answer(client, { type: 'presence', topic: 'chat:lobby', id: 'p2' })).toMatchObject({
      type: 'error',
      code: 'forbidden',
      message: "not allowed to read the presence of 'chat:lobby'",
    });
  });
});
