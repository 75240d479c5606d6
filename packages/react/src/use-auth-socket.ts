import type { AuthSocket, AuthSocketOptions, ConnectionState, InboundMessage } from '@authsocket/client';
import { useContext, useEffect, useMemo, useRef, useSyncExternalStore } from 'react';
import { AuthSocketContext } from './context.js';
import { useOwnedClient } from './use-owned-client.js';

export interface UseAuthSocketOptions extends Partial<AuthSocketOptions> {
  /**
   * With `url`, the hook owns a client: created on first render with these options (a new one when
   * `url` changes; other options are read once, except that `getTicket`, `getToken` and a function
   * `initPayload` always call the latest render's), connected on mount, closed on unmount.
   * Without `url` nor `client`, the hook uses the nearest `<AuthSocketProvider>`'s connection.
   */
  readonly url?: string;
  /** Use this client as it is (the app connects and closes it). */
  readonly client?: AuthSocket;
  /**
   * Called for every message while the component is mounted; `lastMessage` only shows the latest one
   * a render saw, so use this when each message counts.
   */
  readonly onMessage?: (message: InboundMessage) => void;
}

export interface UseAuthSocketResult {
  readonly state: ConnectionState;
  /** The authenticated user, while there is one. */
  readonly user: string | undefined;
  /** Token expiry as the server sees it (ms since the epoch), while authenticated. */
  readonly expiresAt: number | undefined;
  /** The latest message received since the component mounted. */
  readonly lastMessage: InboundMessage | undefined;
  /** `client.send`: queued while not authenticated; `{ack: true}` returns a promise of the server's ack. */
  readonly send: AuthSocket['send'];
  /** `client.setAuth`: new credentials, in band on a live socket. */
  readonly setAuth: AuthSocket['setAuth'];
  /** `client.logout`: the server stops delivering at once; resolves on `logged_out`. */
  readonly logout: AuthSocket['logout'];
  /** The client underneath, for topics and events. */
  readonly client: AuthSocket;
}

interface MessageStore {
  subscribe(onChange: () => void): () => void;
  getSnapshot(): InboundMessage | undefined;
}

function lastMessageStore(client: AuthSocket): MessageStore {
  let last: InboundMessage | undefined;
  return {
    subscribe: (onChange) =>
      client.on('message', (message) => {
        last = message;
        onChange();
      }),
    getSnapshot: () => last,
  };
}

/**
 * An authenticated connection as React state: a thin `useSyncExternalStore` over the client's
 * `subscribeSnapshot`/`getSnapshot`, plus the latest message. The client does all the connection work.
 */
export function useAuthSocket(options: UseAuthSocketOptions = {}): UseAuthSocketResult {
  const { client: given, onMessage, ...clientOptions } = options;
  const shared = useContext(AuthSocketContext);
  const owned = useOwnedClient(given === undefined && clientOptions.url !== undefined ? (clientOptions as AuthSocketOptions) : undefined);
  const client = given ?? owned ?? shared;
  if (!client) throw new Error('useAuthSocket() needs a url, a client, or an <AuthSocketProvider> above it');

  const snapshot = useSyncExternalStore(client.subscribeSnapshot, client.getSnapshot, client.getSnapshot);
  const messages = useMemo(() => lastMessageStore(client), [client]);
  const lastMessage = useSyncExternalStore(messages.subscribe, messages.getSnapshot, messages.getSnapshot);

  const onMessageRef = useRef(onMessage);
  useEffect(() => {
    onMessageRef.current = onMessage;
  });
  useEffect(() => client.on('message', (message) => onMessageRef.current?.(message)), [client]);

  const methods = useMemo(
    () => ({ send: client.send.bind(client), setAuth: client.setAuth.bind(client), logout: client.logout.bind(client) }),
    [client],
  );
  return useMemo(
    () => ({ state: snapshot.state, user: snapshot.user, expiresAt: snapshot.expiresAt, lastMessage, ...methods, client }),
    [snapshot, lastMessage, methods, client],
  );
}
