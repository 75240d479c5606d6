// Type tests: checked by `tsc -p tsconfig.test.json` (a wrong type fails compilation), never run.
import { configureStore } from '@reduxjs/toolkit';
import type { AuthCredentials, AuthenticatedEvent, AuthSocket, CloseEvent, StateChange } from '@authsocket/client';
import { applyMiddleware, legacy_createStore, type Middleware } from 'redux';
import { expectTypeOf } from 'vitest';
import {
  type AuthSocketState,
  createAuthSocketMiddleware,
  isServerAction,
  isWebSocketAction,
  type LoggedInAction,
  type SerializedError,
  type ServerAction,
} from '../src/index.js';

declare const url: string;

// Default names: literal types, payloads, meta.
const socket = createAuthSocketMiddleware({ url });
expectTypeOf(socket.actionTypes.websocketAuth).toEqualTypeOf<'WEBSOCKET_AUTH'>();
expectTypeOf(socket.actions.loggedIn({ token: 'jwt' })).toEqualTypeOf<LoggedInAction<'LOGGED_IN'>>();
expectTypeOf(socket.actions.loggedIn({ token: 'jwt' }).type).toEqualTypeOf<'LOGGED_IN'>();
expectTypeOf(socket.actions.loggedIn({ token: 'jwt' }).payload.token).toEqualTypeOf<string>();
expectTypeOf(socket.actions.loggedIn).parameters.toEqualTypeOf<[payload: { readonly token: string }]>();
expectTypeOf(socket.actions.websocketAuth).parameters.toEqualTypeOf<[credentials: string | AuthCredentials]>();
expectTypeOf(socket.actions.websocketAuth('jwt').type).toEqualTypeOf<'WEBSOCKET_AUTH'>();
expectTypeOf(socket.actions.websocketAuth('jwt').payload).toEqualTypeOf<string | AuthCredentials>();
expectTypeOf(socket.actions.websocketAuth('jwt').meta.websocket).toEqualTypeOf<true>();
expectTypeOf(socket.actions.websocketLogout().meta.websocket).toEqualTypeOf<true>();
expectTypeOf(socket.actions.logout).parameters.toEqualTypeOf<[]>();
expectTypeOf(socket.actions.authenticated.type).toEqualTypeOf<'WEBSOCKET_AUTHENTICATED'>();
expectTypeOf<ReturnType<typeof socket.actions.authenticated>['payload']>().toEqualTypeOf<AuthenticatedEvent>();
expectTypeOf<ReturnType<typeof socket.actions.closed>['payload']>().toEqualTypeOf<CloseEvent>();
expectTypeOf<ReturnType<typeof socket.actions.stateChanged>['payload']>().toEqualTypeOf<StateChange>();
expectTypeOf<ReturnType<typeof socket.actions.error>['payload']>().toEqualTypeOf<SerializedError>();
expectTypeOf<ReturnType<typeof socket.actions.error>['error']>().toEqualTypeOf<true>();

// @ts-expect-error loggedIn needs {token}
socket.actions.loggedIn({});
// @ts-expect-error loggedIn's token is a string
socket.actions.loggedIn({ token: 1 });
// @ts-expect-error websocketAuth takes a token or credentials
socket.actions.websocketAuth(42);
// @ts-expect-error logout takes nothing
socket.actions.logout('now');

// Renamed types flow into the creators; the others keep their defaults.
const renamed = createAuthSocketMiddleware({ url, actionTypes: { websocketAuth: 'ws/auth', closed: 'ws/closed' } });
expectTypeOf(renamed.actions.websocketAuth('jwt').type).toEqualTypeOf<'ws/auth'>();
expectTypeOf(renamed.actions.websocketAuth.type).toEqualTypeOf<'ws/auth'>();
expectTypeOf(renamed.actions.closed.type).toEqualTypeOf<'ws/closed'>();
expectTypeOf(renamed.actions.open.type).toEqualTypeOf<'WEBSOCKET_OPEN'>();
expectTypeOf(renamed.actionTypes).toEqualTypeOf<
  Readonly<{
    loggedIn: 'LOGGED_IN';
    logout: 'LOGOUT';
    websocketAuth: 'ws/auth';
    websocketLogout: 'WEBSOCKET_LOGOUT';
    connect: 'WEBSOCKET_CONNECT';
    disconnect: 'WEBSOCKET_DISCONNECT';
    open: 'WEBSOCKET_OPEN';
    authenticated: 'WEBSOCKET_AUTHENTICATED';
    reauthRequired: 'WEBSOCKET_REAUTH_REQUIRED';
    loggedOut: 'WEBSOCKET_LOGGED_OUT';
    closed: 'ws/closed';
    error: 'WEBSOCKET_ERROR';
    stateChanged: 'WEBSOCKET_STATE_CHANGED';
  }>
>();
// @ts-expect-error action type names are strings
createAuthSocketMiddleware({ url, actionTypes: { open: 1 } });
// @ts-expect-error only known roles can be renamed
createAuthSocketMiddleware({ url, actionTypes: { nope: 'X' } });

// match() narrows.
declare const unknownAction: unknown;
if (renamed.actions.closed.match(unknownAction)) {
  expectTypeOf(unknownAction.type).toEqualTypeOf<'ws/closed'>();
  expectTypeOf(unknownAction.payload.code).toEqualTypeOf<number>();
}
if (isServerAction(unknownAction)) {
  expectTypeOf(unknownAction).toEqualTypeOf<ServerAction>();
  expectTypeOf(unknownAction.meta.fromServer).toEqualTypeOf<true>();
  expectTypeOf(unknownAction.meta.topic).toEqualTypeOf<string | undefined>();
}
if (isWebSocketAction(unknownAction)) {
  expectTypeOf(unknownAction.meta.websocket).toEqualTypeOf<true>();
}

// selectToken's state type is the middleware's; a client excludes url and the store-side token options.
interface RootLike {
  auth: { token: string | null };
}
const typed = createAuthSocketMiddleware({ url, selectToken: (state: RootLike) => state.auth.token });
expectTypeOf(typed.middleware).toEqualTypeOf<Middleware<Record<never, never>, RootLike>>();
createAuthSocketMiddleware({ url, getToken: async ({ getState }) => String(getState()) });
// @ts-expect-error selectToken returns a token or nothing
createAuthSocketMiddleware({ url, selectToken: (state: RootLike) => state.auth });
declare const client: AuthSocket;
createAuthSocketMiddleware({ client, filterServerAction: (action) => action.type !== 'x' });
// @ts-expect-error a client and a url conflict
createAuthSocketMiddleware({ client, url });
// @ts-expect-error a client keeps its own credential options
createAuthSocketMiddleware({ client, selectToken: (state: RootLike) => state.auth.token });

// The reducer's state, and the middleware in both kinds of store.
expectTypeOf(socket.reducer(undefined, { type: 'x' })).toEqualTypeOf<AuthSocketState>();
const rtkStore = configureStore({
  reducer: { auth: (state: RootLike['auth'] = { token: null }) => state, socket: typed.reducer },
  middleware: (getDefaultMiddleware) => getDefaultMiddleware().concat(typed.middleware),
});
expectTypeOf(rtkStore.getState().socket.status).toEqualTypeOf<AuthSocketState['status']>();
rtkStore.dispatch(typed.actions.websocketAuth('jwt'));
rtkStore.dispatch(typed.actions.logout());
const plainStore = legacy_createStore((state: RootLike = { auth: { token: null } }) => state, applyMiddleware(typed.middleware));
plainStore.dispatch(typed.actions.loggedIn({ token: 'jwt' }));
