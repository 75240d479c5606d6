import type { AuthSocket, AuthSocketOptions } from '@authsocket/client';
import { useEffect, useRef, useState } from 'react';
import { createClient } from './options.js';

interface Owned {
  readonly url: string;
  readonly client: AuthSocket;
}

/**
 * The client a component owns: created lazily for `options.url` (a new one when the url changes),
 * connected when the component mounts and closed when it unmounts. Under StrictMode the
 * mount-unmount-mount closes and reconnects the same client synchronously, before its first socket
 * exists (the client opens it only after getting credentials), so one socket results.
 */
export function useOwnedClient(options: AuthSocketOptions | undefined): AuthSocket | undefined {
  const latest = useRef<Partial<AuthSocketOptions> | undefined>(options);
  useEffect(() => {
    latest.current = options;
  });
  const url = options?.url;
  const [owned, setOwned] = useState<Owned | undefined>(() => (options ? { url: options.url, client: createClient(options, latest) } : undefined));
  let current = owned;
  if (current?.url !== url) {
    // The url changed: derive the new client during render; the effect below swaps the connection.
    current = options ? { url: options.url, client: createClient(options, latest) } : undefined;
    setOwned(current);
  }
  const client = current?.client;
  useEffect(() => {
    if (!client) return undefined;
    client.connect();
    return () => client.close();
  }, [client]);
  return client;
}
