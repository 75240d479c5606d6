import { useAuthSocket } from '@authsocket/react';
import type { ReactElement } from 'react';
import { HELD_VIEW, STATE_VIEWS } from '../connection-states.js';
import { useAppSelector } from '../store/index.js';

/** The connection's state, from the React hook (`useAuthSocket` over the middleware's client). */
export function StatusPill(): ReactElement {
  const { state } = useAuthSocket();
  const held = useAppSelector((s) => s.activity.held !== null);
  const view = held && state === 'reauthenticating' ? HELD_VIEW : STATE_VIEWS[state];
  return (
    <span className={`pill pill-${view.tone}`} data-testid="connection-state" data-state={state} data-held={held} title={view.detail}>
      <span className="pill-dot" aria-hidden="true" />
      <span className="pill-label">{view.label}</span>
      <code className="pill-code">{state}</code>
    </span>
  );
}
