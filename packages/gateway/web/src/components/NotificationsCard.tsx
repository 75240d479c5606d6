import type { ReactElement } from 'react';
import { formatClock } from '../format.js';
import { sendNotification, useAppDispatch, useAppSelector } from '../store/index.js';

export function NotificationsCard({ user }: { user: string }): ReactElement {
  const { items, sending, error } = useAppSelector((state) => state.notifications);
  const dispatch = useAppDispatch();
  const curl = [
    `curl -X POST ${window.location.origin}/api/users/${user}/messages \\`,
    `  -H "Authorization: Bearer $AUTHSOCKET_API_KEY" \\`,
    `  -H 'Content-Type: application/json' \\`,
    `  -d '{"data": {"type": "notifications/added",`,
    `        "payload": {"text": "Your export is ready"}}}'`,
  ].join('\n');

  return (
    <section className="card notifications" aria-labelledby="notifications-title">
      <header className="card-header">
        <h2 id="notifications-title">Notifications</h2>
        {items.length > 0 && <span className="count">{items.length}</span>}
      </header>
      <button type="button" className="button button-secondary button-block" onClick={() => void dispatch(sendNotification())} disabled={sending}>
        {sending ? 'Sending…' : 'Send me a notification'}
      </button>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      <ol className="notification-list" data-testid="notifications">
        {items.length === 0 && <li className="empty">Nothing yet. Pushes to {user} land here, on every tab {user} is signed in on.</li>}
        {items.map((item) => (
          <li key={item.id} className="notification" data-testid="notification">
            <span className="bell" aria-hidden="true">
              <svg viewBox="0 0 20 20" width="16" height="16">
                <path
                  d="M10 2a5 5 0 0 0-5 5v2.6L3.6 12.4A1 1 0 0 0 4.5 14h11a1 1 0 0 0 .9-1.6L15 9.6V7a5 5 0 0 0-5-5zm-2 13a2 2 0 0 0 4 0z"
                  fill="currentColor"
                />
              </svg>
            </span>
            <div>
              <p className="notification-text">{item.text}</p>
              <p className="notification-meta">
                {formatClock(item.at)}
                {item.via ? ` · ${item.via}` : ''}
              </p>
            </div>
          </li>
        ))}
      </ol>
      <p className="hint notification-how">
        A backend pushes to a user with <code>POST /api/users/{user}/messages</code> and its API key. A browser must never hold that
        key, so this button asks the demo gateway — standing in for your backend — at <code>POST /demo/notify</code>, with your login
        token.
      </p>
      <details className="curl">
        <summary>Push one yourself with curl</summary>
        <pre>{curl}</pre>
        <p className="hint">
          The gateway prints its API key once on stderr at start (or set <code>AUTHSOCKET_API_KEY</code>).
        </p>
      </details>
    </section>
  );
}
