import { AuthSocket, type AuthSocketOptions } from '@authsocket/client';

/** The credential callbacks and `initPayload` are read through a ref, so the latest render's win. */
export interface LatestOptions {
  readonly current: Partial<AuthSocketOptions> | undefined;
}

/**
 * A client for `options`, not connected yet (so a render that React throws away costs nothing).
 * `getTicket`, `getToken` and a function `initPayload` call whatever the latest render passed.
 */
export function createClient(options: AuthSocketOptions, latest: LatestOptions): AuthSocket {
  const { getTicket, getToken, initPayload } = options;
  const call = <K extends 'getTicket' | 'getToken'>(key: K): (() => Promise<string>) => {
    return () => {
      const provider = latest.current?.[key] ?? options[key];
      if (typeof provider !== 'function') return Promise.reject(new TypeError(`option '${key}' is no longer a function`));
      return provider();
    };
  };
  return new AuthSocket({
    ...options,
    getTicket: getTicket && call('getTicket'),
    getToken: getToken && call('getToken'),
    initPayload:
      typeof initPayload === 'function'
        ? () => {
            const current = latest.current?.initPayload ?? initPayload;
            return typeof current === 'function' ? (current as () => unknown)() : current;
          }
        : initPayload,
  });
}
