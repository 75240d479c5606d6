import { createSlice, nanoid, type PayloadAction } from '@reduxjs/toolkit';
import { matches } from './lifecycle.js';

export type Tone = 'info' | 'good' | 'warn' | 'bad';

export interface LogLine {
  readonly id: string;
  readonly at: number;
  readonly tone: Tone;
  readonly text: string;
}

/** What the connection did, as the middleware's lifecycle actions tell it. */
export interface ActivityState {
  /** WebSocket upgrades this page made: an in-band refresh keeps the same socket, so this stays put. */
  readonly socketsOpened: number;
  /** A socket is open right now (false between a close and the next open). */
  readonly socketOpen: boolean;
  /** `auth_ok`s answering an `auth` on a live socket (refreshes, the expiry demo's token swap). */
  readonly inBandRefreshes: number;
  /** The token expired and the gateway holds deliveries until a fresh token, or `deadline` (4419). */
  readonly held: { readonly deadline: number; readonly answerAt: number | null } | null;
  /** "Expire my token now" is under way, until the late reauth is accepted. */
  readonly expiring: boolean;
  /** Newest first. */
  readonly log: readonly LogLine[];
}

const MAX_LINES = 80;

const initialState: ActivityState = { socketsOpened: 0, socketOpen: false, inBandRefreshes: 0, held: null, expiring: false, log: [] };

export const activitySlice = createSlice({
  name: 'activity',
  initialState,
  reducers: {
    logged: {
      reducer: (state, action: PayloadAction<LogLine>) => {
        state.log.unshift(action.payload);
        state.log.splice(MAX_LINES);
      },
      prepare: (tone: Tone, text: string) => ({ payload: { id: nanoid(), at: Date.now(), tone, text } }),
    },
    expiryDemoStarted: (state) => {
      state.expiring = true;
    },
    expiryDemoFailed: (state) => {
      state.expiring = false;
    },
    /** The app will answer the held connection's reauth at `answerAt` (ms since the epoch). */
    holdAnswerScheduled: (state, action: PayloadAction<number>) => {
      if (state.held) state.held.answerAt = action.payload;
    },
  },
  extraReducers: (builder) =>
    builder
      .addMatcher(matches.open, (state) => {
        state.socketsOpened += 1;
        state.socketOpen = true;
      })
      .addMatcher(matches.authenticated, (state, action) => {
        if (action.payload.reauth) state.inBandRefreshes += 1;
        if (state.held) state.expiring = false;
        state.held = null;
      })
      .addMatcher(matches.reauthRequired, (state, action) => {
        if (action.payload.reason === 'expired') state.held = { deadline: action.payload.deadline, answerAt: null };
      })
      .addMatcher(matches.closed, (state) => {
        state.socketOpen = false;
        state.held = null;
        state.expiring = false;
      })
      .addMatcher(matches.logout, (state) => {
        state.held = null;
        state.expiring = false;
      }),
});

export const { logged, expiryDemoStarted, expiryDemoFailed, holdAnswerScheduled } = activitySlice.actions;
