import { useAuthSocket } from '@authsocket/react';
import { type ReactElement, useEffect, useState } from 'react';
import { HELD_VIEW, STATE_VIEWS } from '../connection-states.js';
import { otherUser } from '../demo-users.js';
import { formatDuration, formatTime, secondsUntil } from '../format.js';
import { expireTokenNow, LATE_ANSWER_MS, SHORT_TOKEN_SECONDS, useAppDispatch, useAppSelector } from '../store/index.js';
import { useNow } from '../use-now.js';

/** The gateway's default reauth window: it asks for a fresh token this long before `exp`. */
const REAUTH_WINDOW_MS = 30_000;

/** When the current token's life started, as this page saw it: for the countdown bar. */
function useTokenStart(expiresAt: number | undefined): number | undefined {
  const [start, setStart] = useState<{ expiresAt: number; at: number }>();
  useEffect(() => {
    if (expiresAt !== undefined) setStart({ expiresAt, at: Date.now() });
  }, [expiresAt]);
  return start?.expiresAt === expiresAt ? start?.at : undefined;
}

/**
 * The connection as the React hook sees it (`useAuthSocket()` through the provider: state, user,
 * token expiry), with what the Redux store counted (upgrades, in-band auths, the hold).
 */
export function ConnectionCard(): ReactElement {
  const { state, user, expiresAt } = useAuthSocket();
  const { socketsOpened, inBandRefreshes, held, expiring } = useAppSelector((s) => s.activity);
  const dispatch = useAppDispatch();
  const now = useNow();
  const start = useTokenStart(expiresAt);

  const isHeld = held !== null && state === 'reauthenticating';
  const view = isHeld ? HELD_VIEW : STATE_VIEWS[state];
  const remaining = expiresAt === undefined ? undefined : expiresAt - now;
  const total = expiresAt !== undefined && start !== undefined ? Math.max(1, expiresAt - start) : undefined;
  const fraction = remaining !== undefined && total !== undefined ? Math.min(1, Math.max(0, remaining / total)) : 0;
  // Where the gateway's reauth_required lands: 30 s before exp, or halfway for a shorter token.
  const warnAt = total === undefined ? undefined : total > 2 * REAUTH_WINDOW_MS ? REAUTH_WINDOW_MS / total : 0.5;
  const level = remaining === undefined ? 'none' : remaining <= 0 ? 'expired' : warnAt !== undefined && fraction <= warnAt ? 'low' : 'ok';
  const second = user ? otherUser(user) : 'bob';

  return (
    <section className="card connection" aria-labelledby="connection-title" data-testid="connection-card">
      <header className="card-header">
        <h2 id="connection-title">Connection</h2>
        <span className={`state-chip state-chip-${view.tone}`}>
          <span className="pill-dot" aria-hidden="true" />
          {view.label}
        </span>
      </header>
      <p className="state-detail">{view.detail}</p>

      <div className="token">
        <div className="token-row">
          <span className="label">Token</span>
          <span className="token-left" data-testid="token-countdown">
            {remaining === undefined ? '—' : remaining > 0 ? `${formatDuration(remaining)} left` : `expired ${formatDuration(-remaining)} ago`}
          </span>
        </div>
        <div className={`meter meter-${level}`} role="presentation">
          <div className="meter-fill" style={{ width: `${fraction * 100}%` }} />
          {warnAt !== undefined && <div className="meter-mark" style={{ left: `${warnAt * 100}%` }} />}
        </div>
        <p className="token-foot">
          <span>
            <span className="mark-key" aria-hidden="true" /> refresh asked
          </span>
          <span>expires {expiresAt === undefined ? '—' : formatTime(expiresAt)}</span>
        </p>
      </div>

      {isHeld && held && (
        <div className="held" role="status" data-testid="held-banner">
          <strong>Holding your messages</strong>
          <span>
            {held.answerAt !== null && held.answerAt > now
              ? `The app answers the reauth in ${secondsUntil(held.answerAt, now)} s`
              : 'Answering the reauth…'}
            {` · close 4419 at ${formatTime(held.deadline)}`}
          </span>
        </div>
      )}

      <dl className="stats">
        <div>
          <dt>Upgrades</dt>
          <dd data-testid="upgrades">{socketsOpened}</dd>
        </div>
        <div>
          <dt>In-band auths</dt>
          <dd data-testid="refreshes">{inBandRefreshes}</dd>
        </div>
      </dl>
      <p className="hint">Refreshes travel on the open socket: the upgrade count only moves when it reconnects.</p>

      <div className="actions">
        <button
          type="button"
          className="button button-warn"
          onClick={() => void dispatch(expireTokenNow())}
          disabled={expiring || state !== 'open'}
          data-testid="expire-token"
        >
          {expiring ? 'Expiring…' : 'Expire my token now'}
        </button>
        <p className="hint">
          Swaps in a {SHORT_TOKEN_SECONDS}-second token and answers the gateway&apos;s reauth {LATE_ANSWER_MS / 1000} s after it
          expires: what is sent to you meanwhile is held, then delivered in order.
        </p>
        <a className="button button-quiet button-block" href={`/?user=${second}`} target="_blank" rel="noopener">
          Open a second tab as {second} ↗
        </a>
      </div>
    </section>
  );
}
