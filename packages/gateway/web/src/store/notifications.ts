import { createAction, createSlice, nanoid } from '@reduxjs/toolkit';
import { matches } from './lifecycle.js';

/** A push to this user, as `POST /api/users/:user/messages` (or the demo's `/demo/notify`) sent it. */
export interface Notification {
  readonly id: string;
  readonly text: string;
  readonly at: number;
  /** How it was sent, when the sender said. */
  readonly via?: string;
}

export interface NotificationsState {
  readonly items: readonly Notification[];
  readonly sending: boolean;
  readonly error: string | null;
}

const MAX_ITEMS = 50;

/** The action a backend pushes for the app to show: `{type: 'notifications/added', payload: {text}}`. */
export const NOTIFICATION_ADDED = 'notifications/added';

/**
 * A push to this user, made whole (`id`, `at`) whatever the sender put in it: from a
 * `notifications/added` server action, or from a push that is no action at all (shown as JSON).
 */
export const notificationReceived = createAction(
  'notifications/received',
  ({ text, via, id, at }: { text: string; via?: string; id?: string; at?: number }) => ({
    payload: { id: id ?? nanoid(), at: at ?? Date.now(), text, ...(via === undefined ? {} : { via }) } as Notification,
  }),
);

export const notificationsSlice = createSlice({
  name: 'notifications',
  initialState: { items: [], sending: false, error: null } as NotificationsState,
  reducers: {
    sendStarted: (state) => {
      state.sending = true;
      state.error = null;
    },
    sendFinished: (state, action: { type: string; payload: string | null }) => {
      state.sending = false;
      state.error = action.payload;
    },
  },
  extraReducers: (builder) =>
    builder
      .addCase(notificationReceived, (state, action) => {
        if (state.items.some((item) => item.id === action.payload.id)) return;
        state.items.unshift(action.payload);
        state.items.splice(MAX_ITEMS);
      })
      .addMatcher(matches.logout, () => ({ items: [], sending: false, error: null })),
});

export const { sendStarted, sendFinished } = notificationsSlice.actions;
