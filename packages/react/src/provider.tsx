import type { AuthSocket, AuthSocketOptions } from '@authsocket/client';
import type { ReactElement, ReactNode } from 'react';
import { AuthSocketContext } from './context.js';
import { useOwnedClient } from './use-owned-client.js';

/**
 * Either the client's options (the provider creates the client, connects it on mount and closes it
 * on unmount) or a `client` the app built and manages itself (shared as it is).
 */
export type AuthSocketProviderProps = { readonly children?: ReactNode } & (
  | (AuthSocketOptions & { readonly client?: undefined })
  | { readonly client: AuthSocket; readonly url?: undefined }
);

/** Shares one connection with every `useAuthSocket()` below it that is given no `url`. */
export function AuthSocketProvider(props: AuthSocketProviderProps): ReactElement {
  const { children, client: given, ...options } = props;
  const owned = useOwnedClient(given === undefined ? (options as AuthSocketOptions) : undefined);
  return <AuthSocketContext.Provider value={given ?? owned ?? null}>{children}</AuthSocketContext.Provider>;
}
