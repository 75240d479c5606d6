// @vitest-environment jsdom
import type { AuthSocket, InboundMessage } from '@authsocket/client';
import { act, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { StrictMode, useEffect } from 'react';
import { describe, expect, test, vi } from 'vitest';
import { WebSocket } from 'ws';
import { AuthSocketProvider, useAuthSocket, type UseAuthSocketOptions } from '../src/index.js';
import { onCleanup, startServer, tick, trackTimers, until } from './helpers.js';

/** A component as an app writes it: shows the connection, sends, logs out, logs in. */
function Status({ name = 'status', record, onClient, ...options }: UseAuthSocketOptions & {
  name?: string;
  record?: string[];
  onClient?: (client: AuthSocket) => void;
}) {
  const socket = useAuthSocket(options);
  useEffect(() => {
    record?.push(socket.state);
  }, [record, socket.state]);
  useEffect(() => {
    onClient?.(socket.client);
  }, [onClient, socket.client]);
  return (
    <section aria-label={name}>
      <p data-testid={`${name}-state`}>{socket.state}</p>
      <p data-testid={`${name}-user`}>{socket.user ?? 'nobody'}</p>
      <p data-testid={`${name}-last`}>{socket.lastMessage === undefined ? 'none' : JSON.stringify(socket.lastMessage.data)}</p>
      <button type="button" onClick={() => socket.send({ text: `hi from ${name}` })}>
        send {name}
      </button>
      <button type="button" onClick={() => void socket.logout()}>
        logout {name}
      </button>
    </section>
  );
}

const text = (id: string): string | null => screen.getByTestId(id).textContent;

describe('useAuthSocket with its own connection', () => {
  test('goes from connecting to open, shows the user, sends initPayload, updates lastMessage on a push, sends and logs out', async () => {
    const server = await startServer();
    const states: string[] = [];
    const messages: InboundMessage[] = [];
    render(
      <Status
        url={server.wsUrl}
        WebSocket={WebSocket}
        getToken={() => server.token('alice')}
        initPayload={{ kind: 'hello', from: 'init' }}
        onMessage={(message) => messages.push(message)}
        record={states}
      />,
    );

    await waitFor(() => expect(text('status-state')).toBe('open'));
    expect(text('status-user')).toBe('alice');
    expect(states).toEqual(['idle', 'connecting', 'authenticating', 'open']);
    // seed 001: the init payload is the first message after authentication.
    await until(() => server.received.length === 1, 'the init payload');
    expect(server.received).toEqual([{ user: 'alice', data: { kind: 'hello', from: 'init' } }]);
    expect(text('status-last')).toBe('none');

    expect(await server.gateway.sendToUser('alice', { n: 1 })).toBe(1);
    await waitFor(() => expect(text('status-last')).toBe('{"n":1}'));
    expect(await server.gateway.sendToUser('alice', { n: 2 })).toBe(1);
    await waitFor(() => expect(text('status-last')).toBe('{"n":2}'));
    expect(messages.map((message) => message.data)).toEqual([{ n: 1 }, { n: 2 }]);

    fireEvent.click(screen.getByRole('button', { name: 'send status' }));
    await until(() => server.received.length === 2, 'the sent message');
    expect(server.received[1]).toEqual({ user: 'alice', data: { text: 'hi from status' } });

    fireEvent.click(screen.getByRole('button', { name: 'logout status' }));
    await waitFor(() => expect(text('status-state')).toBe('unauthenticated'));
    expect(text('status-user')).toBe('nobody');
    await until(() => server.gateway.connectionCount('alice') === 0, 'the server to unbind alice');
    expect(await server.gateway.sendToUser('alice', { n: 3 })).toBe(0);
  });

  test('setAuth logs a connection in after the fact, in band on the same socket', async () => {
    const server = await startServer();
    function Login() {
      const socket = useAuthSocket({ url: server.wsUrl, WebSocket });
      return (
        <>
          <p data-testid="state">{socket.state}</p>
          <p data-testid="user">{socket.user ?? 'nobody'}</p>
          <button type="button" onClick={async () => socket.setAuth({ token: await server.token('bob') })}>
            log in
          </button>
        </>
      );
    }
    render(<Login />);
    await waitFor(() => expect(text('state')).toBe('unauthenticated'));
    expect(server.upgrades).toBe(0);
    fireEvent.click(screen.getByRole('button', { name: 'log in' }));
    await waitFor(() => expect(text('user')).toBe('bob'));
    expect(server.gateway.connectionCount('bob')).toBe(1);
  });

  test('under StrictMode the mount-unmount-mount ends with exactly one server connection', async () => {
    const server = await startServer();
    const { unmount } = render(
      <StrictMode>
        <Status url={server.wsUrl} WebSocket={WebSocket} getToken={() => server.token('alice')} />
      </StrictMode>,
    );
    await waitFor(() => expect(text('status-state')).toBe('open'));
    await tick();
    expect(server.gateway.connectionCount()).toBe(1);
    // Not even a short-lived second socket: the first mount's attempt ended before it opened one.
    expect(server.upgrades).toBe(1);

    unmount();
    await until(() => server.gateway.connectionCount() === 0, 'the server to see the close');
  });

  test('unmounting while credentials are on their way opens no socket and leaves no timer', async () => {
    const server = await startServer();
    const timers = trackTimers();
    let release!: (token: string) => void;
    const pending = new Promise<string>((resolve) => {
      release = resolve;
    });
    let client!: AuthSocket;
    const { unmount } = render(<Status url={server.wsUrl} WebSocket={WebSocket} getToken={() => pending} onClient={(c) => (client = c)} />);
    await waitFor(() => expect(text('status-state')).toBe('connecting'));
    unmount();
    release(await server.token('alice'));
    await tick();
    expect(client.state).toBe('closed');
    expect(server.upgrades).toBe(0);
    expect(server.gateway.connectionCount()).toBe(0);
    expect(timers.live()).toEqual([]);
  });

  test('unmounting while the upgrade is in flight leaves no socket on the server and no timer', async () => {
    const server = await startServer({ holdUpgrades: true });
    const timers = trackTimers();
    let client!: AuthSocket;
    const { unmount } = render(
      <Status url={server.wsUrl} WebSocket={WebSocket} getToken={() => server.token('alice')} onClient={(c) => (client = c)} />,
    );
    await until(() => server.heldUpgrades === 1, 'the upgrade request at the server');
    expect(text('status-state')).toBe('connecting');

    unmount();
    expect(client.state).toBe('closed');
    server.releaseUpgrades();
    await tick(100);
    expect(server.gateway.connectionCount()).toBe(0);
    expect(server.upgrades).toBe(1);
    expect(timers.live()).toEqual([]);
  });

  test('unmounting while waiting to reconnect clears the wait', async () => {
    const server = await startServer();
    const timers = trackTimers();
    let client!: AuthSocket;
    const { unmount } = render(
      <Status
        url={server.wsUrl}
        WebSocket={WebSocket}
        getToken={() => server.token('alice')}
        minReconnectDelayMs={60_000}
        maxReconnectDelayMs={60_000}
        random={() => 0.5}
        onClient={(c) => (client = c)}
      />,
    );
    await waitFor(() => expect(text('status-state')).toBe('open'));
    await act(async () => {
      await server.gateway.close(); // 1001: the client backs off for ~30 s
    });
    await waitFor(() => expect(text('status-state')).toBe('reconnecting'));
    expect(timers.live()).toContain(60_000);

    unmount();
    expect(client.state).toBe('closed');
    await tick();
    expect(timers.live()).toEqual([]);
  });

  test('without a url, a client or a provider it throws a clear error', () => {
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => {});
    onCleanup(() => consoleError.mockRestore());
    expect(() => render(<Status />)).toThrow('useAuthSocket() needs a url, a client, or an <AuthSocketProvider> above it');
  });
});

describe('AuthSocketProvider', () => {
  test('shares one connection between two components, under StrictMode too', async () => {
    const server = await startServer();
    const { unmount } = render(
      <StrictMode>
        <AuthSocketProvider url={server.wsUrl} WebSocket={WebSocket} getToken={() => server.token('alice')}>
          <Status name="inbox" />
          <Status name="header" />
        </AuthSocketProvider>
      </StrictMode>,
    );
    await waitFor(() => expect(text('inbox-user')).toBe('alice'));
    expect(text('header-user')).toBe('alice');
    await tick();
    expect(server.gateway.connectionCount()).toBe(1);
    expect(server.upgrades).toBe(1);

    expect(await server.gateway.sendToUser('alice', { shared: true })).toBe(1);
    await waitFor(() => expect(text('inbox-last')).toBe('{"shared":true}'));
    expect(text('header-last')).toBe('{"shared":true}');

    fireEvent.click(screen.getByRole('button', { name: 'send header' }));
    fireEvent.click(screen.getByRole('button', { name: 'send inbox' }));
    await until(() => server.received.length === 2, 'both messages');
    expect(server.received.map((entry) => entry.data)).toEqual([{ text: 'hi from header' }, { text: 'hi from inbox' }]);

    unmount();
    await until(() => server.gateway.connectionCount() === 0, 'the shared connection to close');
  });

  test('a client the app built is shared as it is and left open on unmount', async () => {
    const server = await startServer();
    const { AuthSocket } = await import('@authsocket/client');
    const client = new AuthSocket({ url: server.wsUrl, WebSocket, token: await server.token('carol') });
    onCleanup(() => client.close());
    client.connect();
    const { unmount } = render(
      <AuthSocketProvider client={client}>
        <Status />
      </AuthSocketProvider>,
    );
    await waitFor(() => expect(text('status-user')).toBe('carol'));
    unmount();
    await tick();
    expect(client.state).toBe('open');
  });
});
