import { CloseCode } from '@authsocket/protocol';
import type { Connection } from '@authsocket/server';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { RequestRefusedError, SubscriptionEndedError, type TopicState } from '../src/index.js';
import { createClient, nextEvent, recordingWebSocket, SECRET, startServer, type TestServer, until } from './helpers.js';

/** Subscription tokens and the server's `unsubscribed`, from the client's side, against a real gateway. */

const KEY = new TextEncoder().encode(SECRET);

/** A subscription token for `topic` on the server's clock. */
function subscriptionToken(server: TestServer, topic: string, { sub = 'alice', expiresIn = 60 } = {}): Promise<string> {
  const iat = Math.floor(server.clock.now() / 1000);
  return new SignJWT({ topic }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt(iat).setExpirationTime(iat + expiresIn).sign(KEY);
}

/** A gateway where topics are granted by subscription tokens only, remembering the live connection to drop it. */
async function tokensOnly() {
  const server = await startServer({ ticket: 'off', authorize: () => false });
  let connection: Connection | undefined;
  server.gateway.on('authenticated', (event) => {
    connection = event.connection;
  });
  return { server, drop: () => connection?.close(CloseCode.InternalError, 'drop') };
}

describe('subscribe with a subscription token', () => {
  it('asks getToken for each subscribe frame, the first and the one after a reconnect', async () => {
    const { server, drop } = await tokensOnly();
    const frames = recordingWebSocket();
    const client = createClient({ url: server.wsUrl, getToken: () => server.token('alice', 3_600), WebSocket: frames.WebSocket });
    let calls = 0;
    const room = client.topic('private:1');
    client.connect();
    await room.subscribe({
      getToken: () => {
        calls += 1;
        // Each call mints its own token (another lifetime), so the frames show which call they came from.
        return subscriptionToken(server, 'private:1', { expiresIn: 60 + calls });
      },
    });
    expect(calls).toBe(1);
    const back = nextEvent(client, 'authenticated');
    drop();
    await back;
    await until(() => room.state === 'subscribed', 'the resubscription');
    expect(calls).toBe(2);
    const sent = frames.sockets.map((socket) => socket.filter((frame) => frame.type === 'subscribe'));
    expect(sent.map((list) => list.map((frame) => typeof frame.token))).toEqual([['string'], ['string']]);
    expect(sent[0]?.[0]?.token).not.toBe(sent[1]?.[0]?.token);
    expect(await server.gateway.publish('private:1', 'x')).toBe(1);
  });

  it("rejects with the server's refusal (token_expired) and leaves the topic", async () => {
    const { server } = await tokensOnly();
    const client = createClient({ url: server.wsUrl, token: await server.token('alice', 3_600) });
    client.connect();
    const room = client.topic('private:1');
    const expired = await subscriptionToken(server, 'private:1', { expiresIn: -120 });
    const error = await room.subscribe({ token: expired }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RequestRefusedError);
    expect(error).toMatchObject({ reason: 'token_expired', message: 'subscription token expired' });
    expect(room.state).toBe('unsubscribed');
  });

  it("ends the Subscription on the server's `unsubscribed`, with its reason, and does not subscribe it again after a reconnect", async () => {
    const { server, drop } = await tokensOnly();
    const frames = recordingWebSocket();
    const client = createClient({ url: server.wsUrl, getToken: () => server.token('alice', 3_600), WebSocket: frames.WebSocket });
    const room = client.topic('private:1');
    const states: TopicState[] = [];
    room.on('state', ({ newState }) => states.push(newState));
    const ended: SubscriptionEndedError[] = [];
    room.on('ended', (error) => ended.push(error));
    client.connect();
    await room.subscribe({ token: await subscriptionToken(server, 'private:1') });
    server.clock.advance(60_000);
    await until(() => ended.length === 1, 'the end of the subscription');
    expect(ended[0]).toBeInstanceOf(SubscriptionEndedError);
    expect(ended[0]).toMatchObject({ reason: 'expired', message: 'subscription token expired' });
    expect(states).toEqual(['subscribing', 'subscribed', 'unsubscribed']);
    const back = nextEvent(client, 'authenticated');
    drop();
    await back;
    await client.rpc('ping').catch(() => undefined);
    expect(frames.sockets[1]?.some((frame) => frame.type === 'subscribe')).toBe(false);
    expect(room.state).toBe('unsubscribed');
    // Subscribing again with a fresh token joins it again.
    await room.subscribe({ token: await subscriptionToken(server, 'private:1') });
    expect(await server.gateway.publish('private:1', 'back')).toBe(1);
  });

  it('renews the grant when subscribed again with a fresher token', async () => {
    const { server } = await tokensOnly();
    const client = createClient({ url: server.wsUrl, token: await server.token('alice', 3_600) });
    const room = client.topic('private:1');
    const ended: SubscriptionEndedError[] = [];
    room.on('ended', (error) => ended.push(error));
    client.connect();
    await room.subscribe({ token: await subscriptionToken(server, 'private:1', { expiresIn: 60 }) });
    server.clock.advance(30_000);
    await room.subscribe({ token: await subscriptionToken(server, 'private:1', { expiresIn: 120 }) });
    server.clock.advance(60_000);
    await client.rpc('ping').catch(() => undefined);
    expect(ended).toEqual([]);
    expect(room.state).toBe('subscribed');
    expect(await server.gateway.publish('private:1', 'still')).toBe(1);
  });
});
