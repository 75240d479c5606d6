import { applyMiddleware, combineReducers, legacy_createStore, type Middleware, type UnknownAction } from 'redux';
import { WebSocket } from 'ws';
import { describe, expect, test } from 'vitest';
import { AuthSocket } from '@authsocket/client';
import { createAuthSocketMiddleware, DEFAULT_ACTION_TYPES, isServerAction } from '../src/index.js';
import { httpLogin, onCleanup, startServer, tick, until } from './helpers.js';

describe('with plain Redux', () => {
  test('legacy_createStore with applyMiddleware runs the whole flow, with renamed action types', async () => {
    const server = await startServer();
    const socket = createAuthSocketMiddleware({
      url: server.wsUrl,
      WebSocket,
      actionTypes: { loggedIn: 'session/loggedIn', logout: 'session/logout', websocketAuth: 'ws/auth', authenticated: 'ws/authenticated' },
    });
    onCleanup(() => socket.close());
    expect(socket.actionTypes).toEqual({
      ...DEFAULT_ACTION_TYPES,
      loggedIn: 'session/loggedIn',
      logout: 'session/logout',
      websocketAuth: 'ws/auth',
      authenticated: 'ws/authenticated',
    });
    const reached: string[] = [];
    const recorder: Middleware = () => (next) => (action) => {
      reached.push((action as UnknownAction).type);
      return next(action);
    };
    const messages = (state: unknown[] = [], action: UnknownAction): unknown[] => (isServerAction(action) ? [...state, action.payload] : state);
    const store = legacy_createStore(combineReducers({ socket: socket.reducer, messages }), applyMiddleware(socket.middleware, recorder));

    store.dispatch({ type: 'todo/add', payload: 'queued before login', meta: { websocket: true } });
    store.dispatch(socket.actions.loggedIn({ token: await httpLogin(server.origin, 'carol') }));
    await until(() => store.getState().socket.user === 'carol', 'authentication');
    expect(reached).toContain('ws/authenticated');
    expect(reached).not.toContain('ws/auth');
    await until(() => server.received.length === 1, 'the queued action');
    expect(server.received).toEqual([{ user: 'carol', data: { type: 'todo/add', payload: 'queued before login' } }]);

    await server.gateway.sendToUser('carol', { type: 'todo/added', payload: 'from the server' });
    await until(() => store.getState().messages.length === 1, 'the server action');
    expect(store.getState().messages).toEqual(['from the server']);

    store.dispatch({ type: 'session/logout' });
    await until(() => reached.includes('WEBSOCKET_LOGGED_OUT'), 'logout');
    expect(await server.gateway.sendToUser('carol', { type: 'todo/added', payload: 'late' })).toBe(0);
  });

  test('a client built by the app is used as it is, with its own credentials', async () => {
    const server = await startServer();
    const token = await httpLogin(server.origin, 'dave');
    const client = new AuthSocket({ url: server.wsUrl, WebSocket, token });
    onCleanup(() => client.close());
    const socket = createAuthSocketMiddleware({ client });
    onCleanup(() => socket.close());
    expect(socket.client).toBe(client);
    const store = legacy_createStore(combineReducers({ socket: socket.reducer }), applyMiddleware(socket.middleware));
    await until(() => store.getState().socket.user === 'dave', 'authentication with the client’s token');
    socket.close();
    // The middleware's close() leaves an app-owned client alone.
    await tick();
    expect(client.state).toBe('open');
  });

  test('one middleware cannot serve two stores', async () => {
    const server = await startServer();
    const socket = createAuthSocketMiddleware({ url: server.wsUrl, WebSocket });
    onCleanup(() => socket.close());
    legacy_createStore(combineReducers({ socket: socket.reducer }), applyMiddleware(socket.middleware));
    expect(() => legacy_createStore(combineReducers({ socket: socket.reducer }), applyMiddleware(socket.middleware))).toThrow(
      'this authsocket middleware is already attached to a store: create one per store',
    );
  });
});

describe('options', () => {
  const url = 'ws://127.0.0.1:1/';
  const refusals: Array<[string, () => unknown, string]> = [
    ['a non-object', () => createAuthSocketMiddleware(null as never), 'options must be an object'],
    ['an unknown action type key', () => createAuthSocketMiddleware({ url, WebSocket, actionTypes: { nope: 'X' } as never }), `option 'actionTypes' has an unknown key 'nope'`],
    ['an empty action type', () => createAuthSocketMiddleware({ url, WebSocket, actionTypes: { open: '' } }), `option 'actionTypes.open' must be a non-empty string`],
    [
      'two roles with one type',
      () => createAuthSocketMiddleware({ url, WebSocket, actionTypes: { open: 'WEBSOCKET_CLOSED' } }),
      `options 'actionTypes.open' and 'actionTypes.closed' conflict: both are 'WEBSOCKET_CLOSED'`,
    ],
    [
      'a client and a url',
      () => createAuthSocketMiddleware({ client: new AuthSocket({ url, WebSocket }), url } as never),
      `options 'client' and 'url' conflict: pass one`,
    ],
    ['a client that is not an AuthSocket', () => createAuthSocketMiddleware({ client: {} as never }), `option 'client' must be an AuthSocket`],
    ['a filter that is not a function', () => createAuthSocketMiddleware({ url, WebSocket, filterServerAction: 1 as never }), `option 'filterServerAction' must be a function`],
    ['a bad url (checked by the client)', () => createAuthSocketMiddleware({ url: 'http://x', WebSocket }), `option 'url' must be a ws:// or wss:// URL`],
  ];
  for (const [what, build, message] of refusals) {
    test(`${what} is refused with a TypeError naming it`, () => {
      expect(build).toThrow(TypeError);
      expect(build).toThrow(message);
    });
  }

  test('action creators carry their type and match only their own actions', () => {
    const { actions } = createAuthSocketMiddleware({ url, WebSocket, autoConnect: false, actionTypes: { websocketAuth: 'ws/auth' } });
    expect(actions.websocketAuth('jwt')).toEqual({ type: 'ws/auth', payload: 'jwt', meta: { websocket: true } });
    expect(actions.websocketAuth({ ticket: 't' })).toEqual({ type: 'ws/auth', payload: { ticket: 't' }, meta: { websocket: true } });
    expect(actions.websocketAuth.type).toBe('ws/auth');
    expect(actions.websocketAuth.match({ type: 'ws/auth' })).toBe(true);
    expect(actions.websocketAuth.match({ type: 'WEBSOCKET_AUTH' })).toBe(false);
    expect(actions.websocketLogout()).toEqual({ type: 'WEBSOCKET_LOGOUT', meta: { websocket: true } });
    expect(actions.error(new TypeError('bad'))).toEqual({ type: 'WEBSOCKET_ERROR', payload: { name: 'TypeError', message: 'bad' }, error: true });
    expect(actions.error('a string')).toEqual({ type: 'WEBSOCKET_ERROR', payload: { name: 'Error', message: 'non-error thrown: a string' }, error: true });
  });
});
