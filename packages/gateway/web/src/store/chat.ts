import { isServerAction } from '@authsocket/redux';
import { createAction, createSlice, nanoid } from '@reduxjs/toolkit';
import { matches } from './lifecycle.js';

export const LOBBY = 'chat:lobby';
export const MAX_CHAT_TEXT = 500;

/** As the gateway publishes it on the topic (demo mode): `from` is the sender's authenticated user. */
export interface ChatPost {
  readonly id: string;
  readonly topic: string;
  readonly from: string;
  readonly text: string;
  readonly at: number;
}

export type ChatEntry =
  | ({ readonly kind: 'post' } & ChatPost)
  | { readonly kind: 'notice'; readonly id: string; readonly text: string; readonly at: number };

export interface ChatState {
  readonly entries: readonly ChatEntry[];
  /** The gateway confirmed the subscription to the room. */
  readonly joined: boolean;
}

const MAX_ENTRIES = 200;

/**
 * Seed 000: an action marked `meta.websocket` goes over the socket as a protocol `message`; the
 * gateway publishes it on the room's topic as `chat/posted`, naming the sender from its token.
 */
export const chatSend = createAction('chat/send', (text: string) => ({
  payload: { topic: LOBBY, text },
  meta: { websocket: true as const },
}));

/** The server's push, dispatched by the middleware with `meta.fromServer` and `meta.topic`. */
export const chatPosted = 'chat/posted';

/** A resume found the history gone (the gateway restarted): say so in the room. */
export const historyLost = createAction('chat/historyLost', (streams: readonly string[]) => ({
  payload: { streams, id: nanoid(), at: Date.now() },
}));

function isPost(value: unknown): value is ChatPost {
  const post = value as Partial<ChatPost> | null;
  return (
    typeof post === 'object' &&
    post !== null &&
    typeof post.id === 'string' &&
    typeof post.from === 'string' &&
    typeof post.text === 'string' &&
    typeof post.at === 'number'
  );
}

export const chatSlice = createSlice({
  name: 'chat',
  initialState: { entries: [], joined: false } as ChatState,
  reducers: {
    joined: (state) => {
      state.joined = true;
    },
  },
  extraReducers: (builder) =>
    builder
      .addCase(historyLost, (state, action) => {
        if (!action.payload.streams.some((stream) => stream === `topic:${LOBBY}`)) return;
        state.entries.push({
          kind: 'notice',
          id: action.payload.id,
          at: action.payload.at,
          text: 'History lost during a gateway restart: messages sent while you were away could not be replayed. Re-synced — live from here.',
        });
      })
      .addMatcher(matches.logout, () => ({ entries: [], joined: false }))
      .addMatcher(isServerAction, (state, action) => {
        if (action.type !== chatPosted || action.meta.topic !== LOBBY || !isPost(action.payload)) return;
        const post = action.payload;
        if (state.entries.some((entry) => entry.id === post.id)) return;
        state.entries.push({ kind: 'post', ...post });
        if (state.entries.length > MAX_ENTRIES) state.entries.splice(0, state.entries.length - MAX_ENTRIES);
      }),
});

export const { joined } = chatSlice.actions;
