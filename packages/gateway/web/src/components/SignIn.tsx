import { type FormEvent, type ReactElement, useState } from 'react';
import { DEMO_USERS } from '../demo-users.js';
import { logIn, useAppDispatch, useAppSelector } from '../store/index.js';
import { Avatar } from './Avatar.js';

/** `?user=bob` (the "open a second tab" link) picks that demo user. */
function requestedUser(): (typeof DEMO_USERS)[number] | undefined {
  const wanted = new URLSearchParams(window.location.search).get('user');
  return DEMO_USERS.find((demo) => demo.user === wanted);
}

export function SignIn(): ReactElement {
  const dispatch = useAppDispatch();
  const { status, error } = useAppSelector((state) => state.auth.login);
  const [username, setUsername] = useState(() => requestedUser()?.user ?? '');
  const [password, setPassword] = useState(() => requestedUser()?.password ?? '');
  const pending = status === 'pending';

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!pending) void dispatch(logIn(username, password));
  };

  return (
    <main className="signin">
      <section className="card signin-card" aria-labelledby="signin-title">
        <h1 id="signin-title">Sign in to the demo</h1>
        <p className="muted">
          Your login returns a short-lived JWT; the app dispatches <code>LOGGED_IN</code> and the Redux middleware authenticates the
          WebSocket with it. Until then this page has no socket, so nothing can reach it.
        </p>
        <form className="form" onSubmit={submit}>
          <label className="field">
            <span>Username</span>
            <input
              name="username"
              autoComplete="username"
              value={username}
              onChange={(event) => setUsername(event.target.value)}
              placeholder="alice"
              required
            />
          </label>
          <label className="field">
            <span>Password</span>
            <input
              name="password"
              type="password"
              autoComplete="current-password"
              value={password}
              onChange={(event) => setPassword(event.target.value)}
              required
            />
          </label>
          {error && (
            <p className="form-error" role="alert">
              {error}
            </p>
          )}
          <button type="submit" className="button button-primary button-block" disabled={pending}>
            {pending ? 'Signing in…' : 'Sign in'}
          </button>
        </form>
        <div className="demo-users">
          <p className="label">Demo users — pick one</p>
          <ul>
            {DEMO_USERS.map((demo) => (
              <li key={demo.user}>
                <button
                  type="button"
                  className={`demo-user${username === demo.user ? ' demo-user-selected' : ''}`}
                  data-testid={`demo-user-${demo.user}`}
                  onClick={() => {
                    setUsername(demo.user);
                    setPassword(demo.password);
                  }}
                >
                  <Avatar user={demo.user} size={28} />
                  <span className="demo-user-name">{demo.user}</span>
                  <code className="demo-user-password">{demo.password}</code>
                </button>
              </li>
            ))}
          </ul>
        </div>
      </section>
      <section className="signin-aside" aria-label="What this demo shows">
        <h2>What you will see</h2>
        <ul className="features">
          <li>
            <strong>A chat room</strong> on the topic <code>chat:lobby</code>, delivered only to signed-in users, each message named
            after its sender&apos;s token.
          </li>
          <li>
            <strong>Private pushes</strong> from the backend&apos;s HTTP API to your every tab, and to nobody else.
          </li>
          <li>
            <strong>Tokens that expire</strong> every two minutes, refreshed in band on the same socket — or expired on demand to
            watch the gateway hold your messages and deliver them after the reauth.
          </li>
          <li>
            <strong>Log out</strong> stops the pushes at once; a gateway restart reconnects and says what history it lost.
          </li>
        </ul>
      </section>
    </main>
  );
}
