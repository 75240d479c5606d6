import type { ReactElement } from 'react';
import { logOut, useAppDispatch, useAppSelector } from '../store/index.js';
import { Avatar } from './Avatar.js';
import { StatusPill } from './StatusPill.js';

export function Header(): ReactElement {
  const user = useAppSelector((state) => state.auth.user);
  const dispatch = useAppDispatch();
  return (
    <header className="topbar">
      <div className="topbar-inner">
        <a className="brand" href="/" aria-label="authsocket demo">
          <span className="brand-mark" aria-hidden="true">
            <svg viewBox="0 0 32 32" width="28" height="28">
              <rect width="32" height="32" rx="8" fill="currentColor" />
              <path d="M9 17l5 5 9-11" stroke="white" strokeWidth="3.5" fill="none" strokeLinecap="round" strokeLinejoin="round" />
            </svg>
          </span>
          <span className="brand-name">authsocket</span>
          <span className="brand-tag">demo</span>
        </a>
        <div className="topbar-status">
          <StatusPill />
        </div>
        {user !== null && (
          <div className="topbar-user">
            <Avatar user={user} size={30} />
            <span className="topbar-username" data-testid="signed-in-user">
              {user}
            </span>
            <button type="button" className="button button-quiet" onClick={() => dispatch(logOut())}>
              Log out
            </button>
          </div>
        )}
      </div>
    </header>
  );
}
