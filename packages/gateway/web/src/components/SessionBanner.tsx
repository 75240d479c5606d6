import { useAuthSocket } from '@authsocket/react';
import type { ReactElement } from 'react';
import { closeCodeName, secondsUntil } from '../format.js';
import { useAppSelector } from '../store/index.js';
import { useNow } from '../use-now.js';

/** What the room is going through when it is not simply live: said where the messages are. */
export function SessionBanner(): ReactElement | null {
  const { state } = useAuthSocket();
  const held = useAppSelector((s) => s.activity.held);
  const lastClose = useAppSelector((s) => s.socket.lastClose);
  const now = useNow(500);
  if (held && state === 'reauthenticating') {
    const wait = held.answerAt !== null && held.answerAt > now ? ` in ${secondsUntil(held.answerAt, now)} s` : '';
    return (
      <div className="banner banner-warn" role="status" data-testid="chat-banner">
        <strong>Token expired — the gateway is holding messages for you.</strong> They arrive in order once the app sends a fresh
        token{wait}.
      </div>
    );
  }
  if (state === 'reconnecting' || state === 'connecting' || state === 'authenticating') {
    if (lastClose === null) return null;
    return (
      <div className="banner banner-pending" role="status" data-testid="chat-banner">
        <strong>Connection lost ({lastClose.code} {closeCodeName(lastClose.code)}) — reconnecting.</strong> What you missed is
        resumed from the gateway&apos;s history when it is back.
      </div>
    );
  }
  if (state === 'closed' || state === 'unauthenticated') {
    return (
      <div className="banner banner-bad" role="status" data-testid="chat-banner">
        <strong>Disconnected.</strong> Nothing reaches this page any more: log out and sign in again.
      </div>
    );
  }
  return null;
}
