import { useAuthSocket } from '@authsocket/react';
import { type FormEvent, type ReactElement, useEffect, useRef, useState } from 'react';
import { formatClock } from '../format.js';
import { LOBBY, MAX_CHAT_TEXT } from '../store/chat.js';
import { sendChat, useAppDispatch, useAppSelector } from '../store/index.js';
import { Avatar } from './Avatar.js';
import { SessionBanner } from './SessionBanner.js';

export function ChatRoom({ user }: { user: string }): ReactElement {
  const { entries, joined } = useAppSelector((state) => state.chat);
  const held = useAppSelector((state) => state.activity.held !== null);
  const dispatch = useAppDispatch();
  const { state } = useAuthSocket();
  const [text, setText] = useState('');
  const list = useRef<HTMLOListElement>(null);

  // Follow the conversation as it grows.
  useEffect(() => {
    const element = list.current;
    if (element) element.scrollTop = element.scrollHeight;
  }, [entries.length]);

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!text.trim()) return;
    dispatch(sendChat(text));
    setText('');
  };
  // A routine in-band refresh is no interruption; a hold is.
  const live = state === 'open' || (state === 'reauthenticating' && !held);

  return (
    <section className="card chat" aria-labelledby="chat-title" data-joined={joined}>
      <header className="card-header chat-header">
        <div>
          <h2 id="chat-title">
            <span className="hash" aria-hidden="true">
              #
            </span>
            lobby
          </h2>
          <p className="card-sub">
            Topic <code>{LOBBY}</code> · delivered to signed-in users only
          </p>
        </div>
      </header>
      <SessionBanner />
      <ol className="chat-log" ref={list} aria-live="polite" data-testid="chat-log">
        {entries.length === 0 && (
          <li className="chat-empty">
            <p>No messages yet.</p>
            <p className="muted">Say hello, or open a second tab as someone else and talk to yourself.</p>
          </li>
        )}
        {entries.map((entry) =>
          entry.kind === 'notice' ? (
            <li key={entry.id} className="chat-notice" data-testid="chat-notice">
              <span>{entry.text}</span>
            </li>
          ) : (
            <li key={entry.id} className={`chat-post${entry.from === user ? ' chat-post-own' : ''}`} data-testid="chat-message" data-from={entry.from}>
              {entry.from !== user && <Avatar user={entry.from} size={30} />}
              <div className="chat-bubble">
                <div className="chat-meta">
                  <span className="chat-from">{entry.from === user ? 'You' : entry.from}</span>
                  <time dateTime={new Date(entry.at).toISOString()}>{formatClock(entry.at)}</time>
                </div>
                <p className="chat-text">{entry.text}</p>
              </div>
            </li>
          ),
        )}
      </ol>
      <form className="composer" onSubmit={submit}>
        <input
          aria-label={`Message #lobby as ${user}`}
          placeholder={`Message #lobby as ${user}`}
          value={text}
          maxLength={MAX_CHAT_TEXT}
          onChange={(event) => setText(event.target.value)}
          data-testid="chat-input"
        />
        <button type="submit" className="button button-primary" disabled={!text.trim()}>
          Send
        </button>
      </form>
      <p className="composer-hint">
        {live ? (
          <>
            Sent as <code>{'{type: "chat/send", meta: {websocket: true}}'}</code>; the gateway publishes it on <code>{LOBBY}</code> under
            the name in your token.
          </>
        ) : (
          <>Not live right now: what you send is queued and goes out, in order, once the socket is authenticated again.</>
        )}
      </p>
    </section>
  );
}
