import type { PresenceMember } from '@authsocket/protocol';
import { describe, expect, it } from 'vitest';
import { RequestRefusedError } from '../src/index.js';
import { SignJWT } from 'jose';
import { createClient, nextEvent, SECRET, startServer, type TestServer, until } from './helpers.js';

/** A token with a `name` claim, on the server's clock (the helper's tokens carry `sub` alone). */
function namedToken(server: TestServer, sub: string, name: string): Promise<string> {
  const iat = Math.floor(server.clock.now() / 1000);
  return new SignJWT({ name }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt(iat).setExpirationTime(iat + 300).sign(new TextEncoder().encode(SECRET));
}

describe('client.presence()', () => {
  it('resolves with the count and the members, or the count alone with countOnly; queued before authentication', async () => {
    // An authorize of the operator's own lets a non-subscriber (bob, before he joins) read presence.
    const server = await startServer({ ticket: 'off', presence: { infoClaim: 'name' }, authorize: () => true });
    const alice = createClient({ url: server.wsUrl, token: await namedToken(server, 'alice', 'Alice') });
    const bob = createClient({ url: server.wsUrl, token: await server.token('bob') });
    alice.connect();
    await alice.topic('room').subscribe();
    // Asked before bob's client is even connected: sent after its auth_ok.
    const early = bob.presence('room');
    bob.connect();
    const answer = await early;
    expect(answer.count).toBe(1);
    expect(answer.members).toEqual([{ user: 'alice', connection: expect.any(String), info: 'Alice' }]);
    await bob.topic('room').subscribe();
    expect(await bob.presence('room', { countOnly: true })).toEqual({ count: 2 });
    expect(() => bob.presence('')).toThrow(TypeError);
  });

  it('rejects with RequestRefusedError: forbidden for a hidden topic, bad_request for a topic without presence', async () => {
    const server = await startServer({
      ticket: 'off',
      presence: { topics: ['room:*'] },
      authorize: (_user, action, topic) => action !== 'presence' || topic !== 'room:secret',
    });
    const client = createClient({ url: server.wsUrl, token: await server.token() });
    client.connect();
    await nextEvent(client, 'authenticated');
    const hidden = await client.presence('room:secret').catch((error: unknown) => error);
    expect(hidden).toBeInstanceOf(RequestRefusedError);
    expect(hidden).toMatchObject({ reason: 'forbidden', message: "not allowed to read the presence of 'room:secret'" });
    await expect(client.presence('lobby')).rejects.toMatchObject({ reason: 'bad_request', message: "topic 'lobby' has no presence" });
  });

  it('sends no token on a presence request in per-message mode (the server takes none)', async () => {
    const server = await startServer({ ticket: 'off', perMessageAuth: true, presence: {} });
    const client = createClient({ url: server.wsUrl, token: await server.token(), perMessageToken: true });
    client.connect();
    await client.topic('room').subscribe();
    expect(await client.presence('room', { countOnly: true })).toEqual({ count: 1 });
  });
});

describe('Topic join and leave events', () => {
  it('emits join and leave with the member while the topic is joined', async () => {
    const server = await startServer({ ticket: 'off', presence: { joinLeave: true } });
    const alice = createClient({ url: server.wsUrl, token: await server.token('alice') });
    const bob = createClient({ url: server.wsUrl, token: await server.token('bob') });
    alice.connect();
    const room = alice.topic('room');
    const joins: PresenceMember[] = [];
    const leaves: PresenceMember[] = [];
    room.on('join', (member) => joins.push(member));
    room.on('leave', (member) => leaves.push(member));
    await room.subscribe();
    // Its own join first.
    await until(() => joins.length === 1, "alice's own join");
    expect(joins[0]).toMatchObject({ user: 'alice' });
    bob.connect();
    await bob.topic('room').subscribe();
    await until(() => joins.length === 2, "bob's join");
    expect(joins[1]).toMatchObject({ user: 'bob', connection: expect.any(String) });
    await bob.topic('room').unsubscribe();
    await until(() => leaves.length === 1, "bob's leave");
    expect(leaves[0]).toEqual(joins[1]);
    // Left: no more events for this topic.
    await room.unsubscribe();
    await bob.topic('room').subscribe();
    expect(await bob.presence('room', { countOnly: true })).toEqual({ count: 1 });
    expect(joins.length).toBe(2);
  });
});
