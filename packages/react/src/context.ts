import type { AuthSocket } from '@authsocket/client';
import { createContext } from 'react';

/** The connection an `<AuthSocketProvider>` shares with the `useAuthSocket()` calls below it. */
export const AuthSocketContext = createContext<AuthSocket | null>(null);
AuthSocketContext.displayName = 'AuthSocketContext';
