import { configureStore, createSlice, type Middleware, type PayloadAction, type UnknownAction } from '@reduxjs/toolkit';
import { WebSocket } from 'ws';
import { describe, expect, test } from 'vitest';
import {
  type AuthSocketMiddlewareOptions,
  createAuthSocketMiddleware,
  isServerAction,
  type ServerAction,
} from '../src/index.js';
import { httpLogin, onCleanup, startServer, type TestServer, tick, until } from './helpers.js';

interface AuthState {
  token: string | null;
}

/** An RTK store as an app has it: an auth slice, an inbox of server actions, the socket's own slice. */
function createApp(server: TestServer, options: Partial<AuthSocketMiddlewareOptions<Record<never, never>, { auth: AuthState }>> = {}) {
  const socket = createAuthSocketMiddleware({
    url: server.wsUrl,
    WebSocket,
    minReconnectDelayMs: 10,
    maxReconnectDelayMs: 100,
    selectToken: (state: { auth: AuthState }) => state.auth.token,
    ...options,
  } as AuthSocketMiddlewareOptions<Record<never, never>, { auth: AuthState }>);
  onCleanup(() => socket.close());
  const auth = createSlice({
    name: 'auth',
    initialState: { token: null } as AuthState,
    reducers: {
      tokenRefreshed(state, action: PayloadAction<string>) {
        state.token = action.payload;
      },
    },
    extraReducers: (builder) =>
      builder
        .addCase(socket.actions.loggedIn, (state, action) => {
          state.token = action.payload.token;
        })
        .addCase(socket.actions.logout, (state) => {
          state.token = null;
        }),
  });
  const inbox = createSlice({
    name: 'inbox',
    initialState: [] as ServerAction[],
    reducers: {},
    extraReducers: (builder) =>
      builder.addMatcher(isServerAction, (state, action) => {
        state.push(action);
      }),
  });
  /** Every action that got past the socket middleware to the reducers, in order. */
  const reached: UnknownAction[] = [];
  const recorder: Middleware = () => (next) => (action) => {
    reached.push(action as UnknownAction);
    return next(action);
  };
  const store = configureStore({
    reducer: { auth: auth.reducer, inbox: inbox.reducer, socket: socket.reducer },
    middleware: (getDefaultMiddleware) => getDefaultMiddleware().concat(socket.middleware, recorder),
  });
  const types = () => reached.map((action) => action.type);
  return { socket, store, reached, types, tokenRefreshed: auth.actions.tokenRefreshed };
}

describe('the seed 000 flow with a Redux Toolkit store', () => {
  test('login over HTTP, LOGGED_IN, WEBSOCKET_AUTH over the socket, server pushes in the store, LOGOUT stops them', async () => {
    const server = await startServer();
    const { socket, store, reached, types } = createApp(server);

    // Nobody is logged in: the middleware opens nothing.
    await tick();
    expect(socket.client.state).toBe('idle');
    expect(server.upgrades).toBe(0);

    const token = await httpLogin(server.origin, 'alice');
    store.dispatch(socket.actions.loggedIn({ token }));
    expect(store.getState().auth.token).toBe(token);

    await until(() => store.getState().socket.user === 'alice', 'the socket to be authenticated as alice');
    // The server saw an `auth` frame on an open socket: the seed's WEBSOCKET_AUTH went over the wire.
    expect(server.authentications).toEqual([{ user: 'alice', method: 'message' }]);
    expect(store.getState().socket.status).toBe('open');
    expect(types()).toContain('LOGGED_IN');
    expect(types()).toContain('WEBSOCKET_OPEN');
    expect(types()).toContain('WEBSOCKET_AUTHENTICATED');
    // WEBSOCKET_AUTH is consumed by the middleware: the token stays out of the action log.
    expect(types()).not.toContain('WEBSOCKET_AUTH');
    expect(reached.filter((action) => JSON.stringify(action).includes(token)).map((action) => action.type)).toEqual(['LOGGED_IN']);
    const authenticated = reached.find((action) => action.type === 'WEBSOCKET_AUTHENTICATED');
    expect(authenticated).toMatchObject({ payload: { user: 'alice', reauth: false, streams: { 'user:alice': { offset: 0 } } } });

    expect(await server.gateway.sendToUser('alice', { type: 'notifications/added', payload: { text: 'export ready' } })).toBe(1);
    await until(() => store.getState().inbox.length === 1, 'the pushed action in the store');
    expect(store.getState().inbox[0]).toEqual({ type: 'notifications/added', payload: { text: 'export ready' }, meta: { fromServer: true } });

    // Data that is not an action is not dispatched.
    expect(await server.gateway.sendToUser('alice', { text: 'no type here' })).toBe(1);
    expect(await server.gateway.sendToUser('alice', { type: 'notifications/added', payload: { text: 'second' } })).toBe(1);
    await until(() => store.getState().inbox.length === 2, 'the second pushed action');
    expect(store.getState().inbox.map((action) => action.payload)).toEqual([{ text: 'export ready' }, { text: 'second' }]);

    store.dispatch(socket.actions.logout());
    expect(store.getState().auth.token).toBeNull();
    await until(() => types().includes('WEBSOCKET_LOGGED_OUT'), 'the server to confirm the logout');
    expect(types()).not.toContain('WEBSOCKET_LOGOUT');
    expect(store.getState().socket).toMatchObject({ status: 'unauthenticated', user: null });

    const before = reached.length;
    expect(await server.gateway.sendToUser('alice', { type: 'notifications/added', payload: { text: 'after logout' } })).toBe(0);
    await tick();
    expect(store.getState().inbox).toHaveLength(2);
    expect(reached.slice(before)).toEqual([]);
  });

  test('an action with meta.websocket dispatched before auth reaches the reducers at once and the server after auth, without its meta', async () => {
    const server = await startServer();
    const { socket, store, types } = createApp(server);

    store.dispatch({ type: 'chat/send', payload: { text: 'first' }, meta: { websocket: true } });
    store.dispatch({ type: 'chat/send', payload: { text: 'second' }, meta: { websocket: true, note: 'dropped with meta' } });
    store.dispatch({ type: 'chat/draft', payload: { text: 'local only' } });
    expect(types().filter((type) => type.startsWith('chat/'))).toEqual(['chat/send', 'chat/send', 'chat/draft']);
    await tick();
    expect(server.received).toEqual([]);

    store.dispatch(socket.actions.loggedIn({ token: await httpLogin(server.origin, 'alice') }));
    await until(() => server.received.length === 2, 'the queued actions at the server');
    expect(server.received).toEqual([
      { user: 'alice', data: { type: 'chat/send', payload: { text: 'first' } } },
      { user: 'alice', data: { type: 'chat/send', payload: { text: 'second' } } },
    ]);

    // Once open, it goes straight out.
    store.dispatch({ type: 'chat/send', payload: { text: 'third' }, meta: { websocket: true } });
    await until(() => server.received.length === 3, 'the third action at the server');
    expect(server.received[2]).toEqual({ user: 'alice', data: { type: 'chat/send', payload: { text: 'third' } } });
  });

  test('when the server asks for a fresh token, the client reads it from the store and reauthenticates in band', async () => {
    const server = await startServer();
    const { socket, store, reached, types, tokenRefreshed } = createApp(server);
    store.dispatch(socket.actions.loggedIn({ token: await server.token('alice', 60) }));
    await until(() => store.getState().socket.user === 'alice', 'the first authentication');

    // The app's own refresh puts a new token in its auth slice; nothing else is told.
    const fresh = await server.token('alice', 600);
    store.dispatch(tokenRefreshed(fresh));
    server.clock.advance(31_000); // inside the 30 s reauth window of the 60 s token

    await until(() => reached.some((action) => action.type === 'WEBSOCKET_AUTHENTICATED' && (action.payload as { reauth: boolean }).reauth), 'the in-band reauthentication');
    expect(reached.find((action) => action.type === 'WEBSOCKET_REAUTH_REQUIRED')).toMatchObject({ payload: { reason: 'expiring' } });
    expect(server.authentications.map((entry) => entry.method)).toEqual(['message', 'reauth']);
    expect(server.upgrades).toBe(1);
    const claims = JSON.parse(Buffer.from(fresh.split('.')[1] as string, 'base64url').toString()) as { exp: number };
    expect(store.getState().socket.expiresAt).toBe(claims.exp * 1000);
    expect(types()).not.toContain('WEBSOCKET_ERROR');
  });

  test('a server close is reported with its code and the reducer keeps it', async () => {
    const server = await startServer();
    const { socket, store, reached } = createApp(server);
    store.dispatch(socket.actions.loggedIn({ token: await httpLogin(server.origin, 'alice') }));
    await until(() => store.getState().socket.user === 'alice', 'authentication');

    await server.gateway.revokeUser('alice');
    await until(() => store.getState().socket.status === 'closed', 'the client to stop on 4403');
    expect(reached.find((action) => action.type === 'WEBSOCKET_CLOSED')).toEqual({
      type: 'WEBSOCKET_CLOSED',
      payload: { code: 4403, reason: 'revoked', action: 'stop' },
    });
    expect(store.getState().socket).toMatchObject({ status: 'closed', user: null, lastClose: { code: 4403, reason: 'revoked' } });
  });

  test('a token already in the store at start connects at once', async () => {
    const server = await startServer();
    const token = await httpLogin(server.origin, 'bob');
    const socket = createAuthSocketMiddleware({
      url: server.wsUrl,
      WebSocket,
      selectToken: (state: { token: string }) => state.token,
    });
    onCleanup(() => socket.close());
    const store = configureStore({
      reducer: { token: (state: string = token) => state, socket: socket.reducer },
      middleware: (getDefaultMiddleware) => getDefaultMiddleware().concat(socket.middleware),
    });
    await until(() => store.getState().socket.user === 'bob', 'authentication from the stored token');
    expect(server.authentications).toEqual([{ user: 'bob', method: 'message' }]);
  });
});

describe('server messages', () => {
  test('never drive the middleware: its own action types are dropped and a server action is never sent back', async () => {
    const server = await startServer();
    const { socket, store, types } = createApp(server);
    store.dispatch(socket.actions.loggedIn({ token: await httpLogin(server.origin, 'alice') }));
    await until(() => store.getState().socket.user === 'alice', 'authentication');

    for (const forged of [
      { type: 'LOGGED_IN', payload: { token: 'attacker-chosen' } },
      { type: 'WEBSOCKET_AUTH', payload: 'attacker-chosen', meta: { websocket: true } },
      { type: 'WEBSOCKET_LOGOUT', meta: { websocket: true } },
      { type: 'WEBSOCKET_DISCONNECT' },
      { type: 'WEBSOCKET_AUTHENTICATED', payload: { user: 'mallory' } },
    ]) {
      expect(await server.gateway.sendToUser('alice', forged)).toBe(1);
    }
    expect(await server.gateway.sendToUser('alice', { type: 'echo', payload: 1, meta: { websocket: true, trace: 'x' } })).toBe(1);
    await until(() => store.getState().inbox.length === 1, 'the echo action');

    expect(store.getState().inbox[0]).toEqual({ type: 'echo', payload: 1, meta: { trace: 'x', fromServer: true } });
    expect(types().filter((type) => type === 'LOGGED_IN')).toHaveLength(1);
    expect(store.getState().auth.token).not.toBe('attacker-chosen');
    expect(store.getState().socket).toMatchObject({ status: 'open', user: 'alice' });
    await tick();
    expect(server.received).toEqual([]);
  });

  test('carry their topic in meta', async () => {
    const server = await startServer();
    const { socket, store } = createApp(server);
    store.dispatch(socket.actions.loggedIn({ token: await httpLogin(server.origin, 'alice') }));
    await socket.client.topic('room:lobby').subscribe();
    expect(await server.gateway.publish('room:lobby', { type: 'room/said', payload: 'hi' })).toBe(1);
    await until(() => store.getState().inbox.length === 1, 'the topic action');
    expect(store.getState().inbox[0]).toEqual({ type: 'room/said', payload: 'hi', meta: { fromServer: true, topic: 'room:lobby' } });
  });

  test('a filter that throws drops that message, is reported as WEBSOCKET_ERROR, and dispatch keeps working', async () => {
    const server = await startServer();
    const { socket, store, reached } = createApp(server, {
      filterServerAction: (action) => {
        if (action.type === 'boom') throw new Error('filter exploded');
        return action.type !== 'ignored';
      },
    });
    store.dispatch(socket.actions.loggedIn({ token: await httpLogin(server.origin, 'alice') }));
    await until(() => store.getState().socket.user === 'alice', 'authentication');

    await server.gateway.sendToUser('alice', { type: 'boom' });
    await server.gateway.sendToUser('alice', { type: 'ignored' });
    await server.gateway.sendToUser('alice', { type: 'kept', payload: 1 });
    await until(() => store.getState().inbox.length === 1, 'the kept action');

    expect(store.getState().inbox.map((action) => action.type)).toEqual(['kept']);
    expect(reached.filter((action) => action.type === 'WEBSOCKET_ERROR')).toEqual([
      { type: 'WEBSOCKET_ERROR', payload: { name: 'Error', message: 'filter exploded' }, error: true },
    ]);
    expect(store.getState().socket.lastError).toEqual({ name: 'Error', message: 'filter exploded' });

    store.dispatch({ type: 'chat/send', payload: 'still fine', meta: { websocket: true } });
    await until(() => server.received.length === 1, 'a send after the failure');
    expect(store.getState().socket.status).toBe('open');
  });

  test('a reducer that throws on a server action is reported and later pushes still arrive', async () => {
    const server = await startServer();
    const socket = createAuthSocketMiddleware({ url: server.wsUrl, WebSocket });
    onCleanup(() => socket.close());
    const seen: string[] = [];
    const store = configureStore({
      reducer: {
        socket: socket.reducer,
        picky: (state: number = 0, action: UnknownAction) => {
          if (action.type === 'poison') throw new Error('reducer exploded');
          if (isServerAction(action)) seen.push(action.type);
          return state;
        },
      },
      middleware: (getDefaultMiddleware) => getDefaultMiddleware().concat(socket.middleware),
    });
    store.dispatch(socket.actions.websocketAuth(await httpLogin(server.origin, 'alice')));
    await until(() => store.getState().socket.user === 'alice', 'authentication');

    await server.gateway.sendToUser('alice', { type: 'poison' });
    await server.gateway.sendToUser('alice', { type: 'fine' });
    await until(() => seen.includes('fine'), 'the push after the poisoned one');
    expect(store.getState().socket).toMatchObject({ status: 'open', lastError: { name: 'Error', message: 'reducer exploded' } });
  });
});

describe('control actions', () => {
  test('reach the reducers too with forwardControlActions, as in the seed', async () => {
    const server = await startServer();
    const { socket, store, types } = createApp(server, { forwardControlActions: true });
    store.dispatch(socket.actions.loggedIn({ token: await httpLogin(server.origin, 'alice') }));
    await until(() => store.getState().socket.user === 'alice', 'authentication');
    expect(types().slice(0, 2)).toEqual(['LOGGED_IN', 'WEBSOCKET_AUTH']);
    store.dispatch(socket.actions.logout());
    await until(() => types().includes('WEBSOCKET_LOGGED_OUT'), 'logout');
    expect(types()).toContain('WEBSOCKET_LOGOUT');
  });

  test('disconnect closes the client and connect opens it again with the same credentials', async () => {
    const server = await startServer();
    const { socket, store } = createApp(server);
    store.dispatch(socket.actions.loggedIn({ token: await httpLogin(server.origin, 'alice') }));
    await until(() => store.getState().socket.user === 'alice', 'authentication');

    store.dispatch(socket.actions.disconnect());
    expect(store.getState().socket.status).toBe('closed');
    await until(() => server.gateway.connectionCount() === 0, 'the server to see the close');

    store.dispatch(socket.actions.connect());
    await until(() => store.getState().socket.user === 'alice', 'authentication after connect');
    expect(server.gateway.connectionCount('alice')).toBe(1);
  });

  test('a malformed WEBSOCKET_AUTH or LOGGED_IN is reported, not thrown', async () => {
    const server = await startServer();
    const { store, reached } = createApp(server);
    expect(() => store.dispatch({ type: 'WEBSOCKET_AUTH', payload: 42, meta: { websocket: true } })).not.toThrow();
    expect(() => store.dispatch({ type: 'LOGGED_IN', payload: {} })).not.toThrow();
    expect(reached.filter((action) => action.type === 'WEBSOCKET_ERROR').map((action) => (action.payload as { message: string }).message)).toEqual([
      `'WEBSOCKET_AUTH' expects a token string or {ticket?, token?} as payload`,
      `'LOGGED_IN' expects {payload: {token: string}}`,
    ]);
    await tick();
    expect(server.upgrades).toBe(0);
  });
});
