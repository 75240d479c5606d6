import { describe, expect, it } from 'vitest';
import { HandlerError } from '@authsocket/server';
import { ConnectionLostError, RequestRefusedError } from '../src/index.js';
import { createClient, gate, nextEvent, startServer, until } from './helpers.js';

describe('rpc()', () => {
  it("resolves with the backend's answer, queued before authentication and sent after auth_ok", async () => {
    const server = await startServer({
      ticket: 'off',
      handler: { onRpc: ({ method, data, user }) => ({ method, echo: data, user }) },
    });
    const client = createClient({ url: server.wsUrl, token: await server.token() });
    const early = client.rpc('whoami', { n: 1 });
    client.connect();
    expect(await early).toEqual({ method: 'whoami', echo: { n: 1 }, user: 'alice' });
    expect(await client.rpc('ping')).toEqual({ method: 'ping', user: 'alice' });
  });

  it('rejects with RequestRefusedError carrying code, temporary and data', async () => {
    const server = await startServer({
      ticket: 'off',
      handler: {
        onRpc: ({ method }) => {
          if (method === 'down') throw new HandlerError('unavailable', 'backend unavailable');
          throw new HandlerError('rejected', 'insufficient funds', { data: { balance: 3 } });
        },
      },
    });
    const client = createClient({ url: server.wsUrl, token: await server.token() });
    client.connect();
    await nextEvent(client, 'authenticated');
    const down = await client.rpc('down').catch((error: unknown) => error);
    expect(down).toBeInstanceOf(RequestRefusedError);
    expect(down).toMatchObject({ reason: 'unavailable', temporary: true, message: 'backend unavailable' });
    await expect(client.rpc('pay')).rejects.toMatchObject({ reason: 'rejected', temporary: false, data: { balance: 3 } });
    expect(() => client.rpc('')).toThrow(TypeError);
  });

  it('rejects with ConnectionLostError when the socket closes before the answer, and does not re-send it', async () => {
    const answer = gate<string>();
    let calls = 0;
    const server = await startServer({
      ticket: 'off',
      handler: {
        onRpc: () => {
          calls++;
          return answer.promise;
        },
      },
    });
    const client = createClient({ url: server.wsUrl, token: await server.token() });
    client.connect();
    await nextEvent(client, 'authenticated');
    const pending = client.rpc('slow');
    await until(() => calls === 1, 'the rpc to reach the server');
    for (const connection of server.gateway.transport.sockets()) connection.terminate();
    await expect(pending).rejects.toBeInstanceOf(ConnectionLostError);
    await nextEvent(client, 'authenticated');
    answer.open('too late');
    expect(await client.rpc('again').catch(() => 'refused')).toBe('too late');
    expect(calls).toBe(2);
  });
});
