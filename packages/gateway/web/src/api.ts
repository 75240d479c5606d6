import { UnauthorizedError } from '@authsocket/client';

/** What the demo identity answers on `POST /auth/login` and `POST /auth/refresh`. */
export interface IssuedToken {
  readonly user: string;
  readonly token: string;
  /** ms since the epoch */
  readonly expiresAt: number;
}

/** A refusal to show the user as it is. */
export class RequestError extends Error {
  override readonly name = 'RequestError';
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** The gateway's WebSocket endpoint on the origin this page came from (`--ws-path` default). */
export function websocketUrl(location: Pick<Location, 'protocol' | 'host'>): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
}

async function post(path: string, { token, body }: { token?: string; body?: unknown } = {}): Promise<Response> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  return fetch(path, { method: 'POST', headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
}

async function errorOf(response: Response): Promise<string> {
  try {
    const { error } = (await response.json()) as { error?: unknown };
    if (typeof error === 'string') return error;
  } catch {
    // not JSON: fall through
  }
  return `the gateway answered ${response.status}`;
}

/** `POST /auth/login`: the app's own HTTP login (seed 000's API action). */
export async function login(username: string, password: string): Promise<IssuedToken> {
  const response = await post('/auth/login', { body: { username, password } });
  if (!response.ok) throw new RequestError(response.status, await errorOf(response));
  return (await response.json()) as IssuedToken;
}

/**
 * `POST /auth/refresh`: trades a still-valid token for a fresh one, of `expiresIn` seconds if given.
 * A 401 means the session is over: `UnauthorizedError` tells the socket client to stop, not retry.
 */
export async function refresh(token: string, expiresIn?: number): Promise<IssuedToken> {
  const response = await post('/auth/refresh', { token, body: expiresIn === undefined ? undefined : { expiresIn } });
  if (response.status === 401) throw new UnauthorizedError('the session has ended: sign in again');
  if (!response.ok) throw new RequestError(response.status, await errorOf(response));
  return (await response.json()) as IssuedToken;
}

/**
 * `POST /demo/notify`: the demo gateway playing the app's backend, which would call
 * `POST /api/users/:user/messages` with its API key (never in a browser).
 */
export async function notifyMe(token: string, text?: string): Promise<{ deliveredLocally: number }> {
  const response = await post('/demo/notify', { token, body: text === undefined ? undefined : { text } });
  if (!response.ok) throw new RequestError(response.status, await errorOf(response));
  return (await response.json()) as { deliveredLocally: number };
}
