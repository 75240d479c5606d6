export { AuthSocketContext } from './context.js';
export { AuthSocketProvider, type AuthSocketProviderProps } from './provider.js';
export { useAuthSocket, type UseAuthSocketOptions, type UseAuthSocketResult } from './use-auth-socket.js';
