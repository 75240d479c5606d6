import { createSlice, type PayloadAction } from '@reduxjs/toolkit';
import type { IssuedToken } from '../api.js';
import { matches } from './lifecycle.js';

/** The app's own session, from its HTTP login: the socket's token comes from here (seed 000). */
export interface AuthState {
  readonly user: string | null;
  /** The session's current JWT: used to refresh, and to authenticate the socket. */
  readonly token: string | null;
  readonly login: { readonly status: 'idle' | 'pending' | 'failed'; readonly error: string | null };
}

const initialState: AuthState = { user: null, token: null, login: { status: 'idle', error: null } };

export const authSlice = createSlice({
  name: 'auth',
  initialState,
  reducers: {
    loginStarted: (state) => {
      state.login = { status: 'pending', error: null };
    },
    loginFailed: (state, action: PayloadAction<string>) => {
      state.login = { status: 'failed', error: action.payload };
    },
    /** The login answered: who this is. `LOGGED_IN` carries the token itself. */
    loginSucceeded: (state, action: PayloadAction<IssuedToken>) => {
      state.user = action.payload.user;
      state.login = { status: 'idle', error: null };
    },
    /** `POST /auth/refresh` answered: the next reauth and any reconnect use this token. */
    tokenRefreshed: (state, action: PayloadAction<IssuedToken>) => {
      if (state.user === action.payload.user) state.token = action.payload.token;
    },
  },
  extraReducers: (builder) =>
    builder
      .addMatcher(matches.loggedIn, (state, action) => {
        state.token = action.payload.token;
      })
      .addMatcher(matches.logout, () => initialState),
});

export const { loginStarted, loginFailed, loginSucceeded, tokenRefreshed } = authSlice.actions;
