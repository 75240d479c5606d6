import { CLOSE_CODES, type CloseCode } from '@authsocket/protocol';

/** `ms` as `m:ss` (never negative). */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
}

/** Whole seconds from `now` to `at`, at least 1. */
export function secondsUntil(at: number, now: number): number {
  return Math.max(1, Math.round((at - now) / 1000));
}

/** A wall-clock time, `14:03:07`. */
export function formatTime(at: number): string {
  return new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

/** A chat time, `14:03`. */
export function formatClock(at: number): string {
  return new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hour12: false });
}

/** The protocol's name for a close code (`going away`, `token expired`, ...). */
export function closeCodeName(code: number): string {
  return CLOSE_CODES[code as CloseCode]?.name ?? (code >= 1000 && code < 2000 ? 'websocket close' : 'unknown');
}
