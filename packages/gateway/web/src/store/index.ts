import { CancelledError, RequestRefusedError, UnauthorizedError } from '@authsocket/client';
import { type AuthSocketState, createAuthSocketMiddleware, DEFAULT_ACTION_TYPES, isAction, isServerAction } from '@authsocket/redux';
import {
  combineReducers,
  configureStore,
  createListenerMiddleware,
  type Dispatch,
  type MiddlewareAPI,
  type ThunkAction,
  type UnknownAction,
} from '@reduxjs/toolkit';
import { useDispatch, useSelector } from 'react-redux';
import * as api from '../api.js';
import { closeCodeName, formatDuration, formatTime } from '../format.js';
import { activitySlice, expiryDemoFailed, expiryDemoStarted, holdAnswerScheduled, logged, type Tone } from './activity.js';
import { authSlice, loginFailed, loginStarted, loginSucceeded, tokenRefreshed } from './auth.js';
import { chatSend, chatSlice, historyLost, joined, LOBBY } from './chat.js';
import { NOTIFICATION_ADDED, notificationReceived, notificationsSlice, sendFinished, sendStarted } from './notifications.js';

/** "Expire my token now" swaps in a token that lives this long… */
export const SHORT_TOKEN_SECONDS = 5;
/** …and answers the gateway's reauth this long after the token expired (the gateway allows 10 s). */
export const LATE_ANSWER_MS = 4_000;

const slices = {
  auth: authSlice.reducer,
  chat: chatSlice.reducer,
  notifications: notificationsSlice.reducer,
  activity: activitySlice.reducer,
};

export type RootState = { readonly [K in keyof typeof slices]: ReturnType<(typeof slices)[K]> } & {
  /** The middleware's own lifecycle reducer: `{status, user, expiresAt, lastClose, lastError}`. */
  readonly socket: AuthSocketState;
};

type StoreApi = MiddlewareAPI<Dispatch, RootState>;

export interface DemoStoreOptions {
  /** The gateway's WebSocket URL. */
  readonly url: string;
}

/**
 * The demo's store: Redux Toolkit with `@authsocket/redux`'s middleware (seed 000). The HTTP login
 * dispatches `LOGGED_IN`, which the middleware turns into `WEBSOCKET_AUTH` (the protocol's `auth`);
 * `chat/send` actions marked `meta.websocket` go over the socket; the gateway's pushes come back as
 * actions; `LOGOUT` becomes the protocol's `logout`. Fresh tokens for in-band refresh come from
 * `POST /auth/refresh` through the middleware's `getToken`.
 */
export function createDemoStore({ url }: DemoStoreOptions) {
  const late = createLateAnswer();
  const socket = createAuthSocketMiddleware({
    url,
    // Stay idle until LOGGED_IN: a page nobody signed in on opens no socket at all.
    autoConnect: false,
    getToken: (store: StoreApi) => freshToken(store, late),
  });
  const extra = { socket, late };
  const listener = createListenerMiddleware<RootState>();
  const store = configureStore({
    reducer: combineReducers({ ...slices, socket: socket.reducer }),
    middleware: (getDefaultMiddleware) =>
      getDefaultMiddleware({ thunk: { extraArgument: extra } })
        .prepend(listener.middleware)
        .concat(socket.middleware),
  });

  // The event log and the pushes the slices take in whole, from the middleware's actions.
  listener.startListening({
    predicate: () => true,
    effect: (action, listenerApi) => {
      const line = describe(action, listenerApi.getState(), listenerApi.getOriginalState());
      if (line) listenerApi.dispatch(logged(...line));
      if (isServerAction(action) && action.meta.topic === undefined) {
        const payload = (action.payload ?? {}) as { text?: unknown; via?: unknown; id?: unknown; at?: unknown };
        const known = action.type === NOTIFICATION_ADDED && typeof payload.text === 'string';
        listenerApi.dispatch(
          notificationReceived({
            text: known ? (payload.text as string) : `${action.type} ${JSON.stringify(action.payload ?? null)}`,
            ...(known && typeof payload.via === 'string' ? { via: payload.via } : {}),
            ...(known && typeof payload.id === 'string' ? { id: payload.id } : {}),
            ...(known && typeof payload.at === 'number' ? { at: payload.at } : {}),
          }),
        );
      }
    },
  });

  // What the Redux actions do not carry: resume results, and pushes that are not actions.
  socket.client.on('authenticated', ({ streams, reauth }) => {
    if (reauth || !streams) return;
    const lost = Object.entries(streams).filter(([, state]) => state.recovered === false).map(([stream]) => stream);
    const recovered = Object.entries(streams).filter(([, state]) => state.recovered === true).map(([stream]) => stream);
    if (lost.length > 0) {
      store.dispatch(historyLost(lost));
      store.dispatch(logged('warn', `Resumed, but the history of ${lost.join(', ')} is gone (new epoch: the gateway restarted). Re-synced from here.`));
    } else if (recovered.length > 0) {
      store.dispatch(logged('good', `Resumed ${recovered.join(', ')} from history: nothing missed.`));
    }
  });
  socket.client.on('message', ({ data, topic }) => {
    if (topic === undefined && !isAction(data)) store.dispatch(notificationReceived({ text: JSON.stringify(data) ?? 'null' }));
  });

  return { store, socket };
}

export type DemoStore = ReturnType<typeof createDemoStore>;
export type AppDispatch = DemoStore['store']['dispatch'];
type Extra = { readonly socket: DemoStore['socket']; readonly late: LateAnswer };
export type AppThunk<R = void> = ThunkAction<R, RootState, Extra, UnknownAction>;

export const useAppDispatch = useDispatch.withTypes<AppDispatch>();
export const useAppSelector = useSelector.withTypes<RootState>();

// --- thunks -------------------------------------------------------------------------------------

/** Seed 000: the app's HTTP login, then `LOGGED_IN {token}`, which the middleware turns into `WEBSOCKET_AUTH`. */
export const logIn =
  (username: string, password: string): AppThunk<Promise<void>> =>
  async (dispatch, _getState, { socket }) => {
    dispatch(loginStarted());
    let issued: api.IssuedToken;
    try {
      issued = await api.login(username.trim(), password);
    } catch (error) {
      dispatch(loginFailed(error instanceof api.RequestError && error.status === 401 ? 'Wrong username or password.' : messageOf(error)));
      return;
    }
    dispatch(loginSucceeded(issued));
    dispatch(logged('info', `POST /auth/login → a JWT for ${issued.user} · LOGGED_IN → WEBSOCKET_AUTH`));
    dispatch(socket.actions.loggedIn({ token: issued.token }));
    // Joined once authenticated, and again on every new socket (the client keeps the topic).
    socket.client.topic(LOBBY).subscribe().then(
      () => {
        dispatch(joined());
        dispatch(logged('good', `Subscribed to ${LOBBY}`));
      },
      (error: unknown) => {
        if (!(error instanceof CancelledError)) dispatch(logged('bad', `Could not join ${LOBBY}: ${messageOf(error)}`));
      },
    );
  };

/** `LOGOUT` → `WEBSOCKET_LOGOUT` → the protocol's `logout`: the gateway stops delivering at once. */
export const logOut = (): AppThunk => (dispatch, _getState, { socket, late }) => {
  late.cancel();
  dispatch(socket.actions.logout());
};

/** A chat message: an action marked `meta.websocket`, sent over the socket (queued while not authenticated). */
export const sendChat =
  (text: string): AppThunk =>
  (dispatch) => {
    const trimmed = text.trim();
    if (trimmed) dispatch(chatSend(trimmed));
  };

/** Asks the demo's stand-in backend to push a notification to this user. */
export const sendNotification = (): AppThunk<Promise<void>> => async (dispatch, getState) => {
  const { token } = getState().auth;
  if (!token) return;
  dispatch(sendStarted());
  try {
    const { deliveredLocally } = await api.notifyMe(token);
    dispatch(sendFinished(null));
    const connections = `${deliveredLocally} connection${deliveredLocally === 1 ? '' : 's'}`;
    dispatch(logged('info', `POST /demo/notify → the backend pushed to ${connections} on this node`));
  } catch (error) {
    dispatch(sendFinished(messageOf(error)));
  }
};

/**
 * An rpc to the application's backend, through the gateway's HTTP event proxy; resolves with what
 * to show (the answer, or why there is none). Logged like everything the socket does.
 */
export const askBackend =
  (method: 'time' | 'later'): AppThunk<Promise<string>> =>
  async (dispatch, _getState, { socket }) => {
    dispatch(logged('info', `rpc ${method} → the gateway POSTs it to the backend`));
    try {
      const answer = (await socket.client.rpc(method, method === 'later' ? { at: Date.now() } : undefined)) as { now?: number; for?: string; queued?: boolean };
      const text =
        method === 'time' && typeof answer.now === 'number'
          ? `The backend says it is ${formatTime(answer.now)} for ${answer.for ?? '?'}`
          : 'Job queued: the backend will push to this tab when it is done';
      dispatch(logged('good', `result ← ${JSON.stringify(answer)}`));
      return text;
    } catch (error) {
      const temporary = error instanceof RequestRefusedError && error.temporary ? ' (temporary: try again)' : '';
      dispatch(logged('bad', `rpc ${method} failed: ${messageOf(error)}${temporary}`));
      return `No answer: ${messageOf(error)}${temporary}`;
    }
  };

/**
 * "Expire my token now": the socket gets, in band, a token that lives `SHORT_TOKEN_SECONDS`, and the
 * app answers the gateway's `reauth_required` late on purpose — only once that token has expired and
 * the gateway holds deliveries, plus `LATE_ANSWER_MS` — so the hold, and the in-order flush after
 * the reauth, can be seen. The session's own token is refreshed first: it makes the late answer.
 */
export const expireTokenNow = (): AppThunk<Promise<void>> => async (dispatch, getState, { socket, late }) => {
  const { token } = getState().auth;
  if (!token || getState().activity.expiring) return;
  dispatch(expiryDemoStarted());
  try {
    const session = await api.refresh(token);
    dispatch(tokenRefreshed(session));
    const short = await api.refresh(session.token, SHORT_TOKEN_SECONDS);
    dispatch(logged('warn', `Expire my token now: the socket gets a ${SHORT_TOKEN_SECONDS}-second token, and the app will answer the reauth late on purpose`));
    late.arm(short.expiresAt);
    dispatch(socket.actions.websocketAuth(short.token));
  } catch (error) {
    dispatch(expiryDemoFailed());
    dispatch(logged('bad', `Could not expire the token: ${messageOf(error)}`));
  }
};

// --- tokens -------------------------------------------------------------------------------------

/** The middleware's `getToken`: the client calls it on `reauth_required` and after a 4401/4419 close. */
async function freshToken(store: StoreApi, late: LateAnswer): Promise<string> {
  await late.wait(store);
  const { token } = store.getState().auth;
  // Signed out: UnauthorizedError stops the client instead of retrying.
  if (!token) throw new UnauthorizedError('signed out');
  const issued = await api.refresh(token);
  store.dispatch(tokenRefreshed(issued));
  store.dispatch(logged('info', `POST /auth/refresh → a fresh token, valid ${formatDuration(issued.expiresAt - Date.now())}`));
  return issued.token;
}

interface LateAnswer {
  arm(expiresAt: number): void;
  cancel(): void;
  /** Resolves at once, unless armed: then once the armed token has expired, plus `LATE_ANSWER_MS`. */
  wait(store: StoreApi): Promise<void>;
}

function createLateAnswer(): LateAnswer {
  let armed: number | undefined;
  let generation = 0;
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  return {
    arm(expiresAt) {
      armed = expiresAt;
    },
    cancel() {
      armed = undefined;
      generation++;
    },
    async wait(store) {
      const expiresAt = armed;
      if (expiresAt === undefined) return;
      armed = undefined;
      const mine = generation;
      const current = () => mine === generation && store.getState().auth.token !== null;
      // Until the gateway says the token expired (reauth_required 'expired': deliveries held).
      while (current() && store.getState().activity.held === null && Date.now() < expiresAt + 2_000) await sleep(100);
      if (!current()) return;
      store.dispatch(holdAnswerScheduled(Date.now() + LATE_ANSWER_MS));
      await sleep(LATE_ANSWER_MS);
    },
  };
}

// --- the event log ------------------------------------------------------------------------------

const T = DEFAULT_ACTION_TYPES;

/** The log line an action deserves, if any. */
function describe(action: unknown, state: RootState, before: RootState): [Tone, string] | undefined {
  if (!isAction(action)) return undefined;
  const payload = (action as { payload?: Record<string, unknown> }).payload ?? {};
  const socketNo = `socket #${state.activity.socketsOpened}`;
  switch (action.type) {
    case T.open:
      return ['info', `WebSocket upgrade: ${socketNo} open → auth {token}`];
    case T.authenticated: {
      const valid = formatDuration((payload.expiresAt as number) - Date.now());
      if (!payload.reauth) return ['good', `auth_ok: signed in as ${String(payload.user)} on ${socketNo} · token valid ${valid}`];
      if (before.activity.held) return ['good', `auth_ok in band: fresh token accepted, held messages flushed in order · same ${socketNo}`];
      if (before.activity.expiring) return ['info', `auth_ok in band: short token in place, valid ${valid} · same ${socketNo}`];
      return ['good', `auth_ok in band: token refreshed, no reconnect · same ${socketNo} · valid ${valid}`];
    }
    case T.reauthRequired:
      if (payload.reason === 'expired') {
        return ['warn', `reauth_required (expired): the gateway holds deliveries until a fresh token, or ${formatTime(payload.deadline as number)}`];
      }
      return [
        'info',
        state.activity.expiring
          ? 'reauth_required (expiring): the app answers late on purpose'
          : 'reauth_required (expiring): fetching a fresh token',
      ];
    case T.closed: {
      const code = payload.code as number;
      const next = payload.action === 'stop' ? 'stop' : payload.action === 'backoff' ? 'reconnect with backoff' : String(payload.action);
      const reason = payload.reason ? ` “${String(payload.reason)}”` : '';
      // A socket that never opened (refused, or nobody listening) is reported as 1006.
      if (!before.activity.socketOpen) return ['warn', `Connection attempt failed (${code} ${closeCodeName(code)}) → ${next}`];
      return [code === 1000 ? 'info' : 'warn', `${socketNo} closed ${code} ${closeCodeName(code)}${reason} → ${next}`];
    }
    case T.stateChanged:
      if (payload.newState === 'unauthenticated' && payload.reason !== 'logout') {
        return ['bad', `Signed out by the client: ${String(payload.reason ?? 'credentials refused')}`];
      }
      if (payload.newState === 'closed') return ['bad', `Connection closed for good: ${String(payload.reason ?? '')}`];
      return undefined;
    case T.loggedOut:
      return ['good', 'logged_out: the gateway delivers nothing more to this socket'];
    case T.logout:
      return ['info', 'LOGOUT → WEBSOCKET_LOGOUT → logout'];
    case T.error:
      return ['bad', String(payload.message ?? 'error')];
    default:
      return undefined;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
