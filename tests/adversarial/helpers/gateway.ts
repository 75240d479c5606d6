import { type Environment, loadConfig, type RunningGateway, startGateway } from '@authsocket/gateway';
import { type Clock, ManualClock } from '@authsocket/server';
import { mint, type MintOptions, SECRET } from './tokens.js';

export const API_KEY = 'adversarial-api-key-0123456789';
export const HOST = '127.0.0.1';

export interface GatewayHandle {
  readonly url: string;
  readonly wsUrl: string;
  readonly port: number;
  /** The gateway's clock: a ManualClock when one was injected, else the system clock's `now`. */
  now(): number;
  readonly clock: ManualClock | undefined;
  /** A JWT for `sub` on this gateway's clock (HS256 with the suite's secret, issuer and audience). */
  token(sub?: string, options?: Omit<MintOptions, 'now' | 'sub'>): Promise<string>;
  /** `POST /auth/ticket` with `token`; returns the response. */
  ticketResponse(token: string): Promise<Response>;
  /** A fresh ticket for `sub`. */
  ticket(sub?: string): Promise<string>;
  /** `POST <path>` on the backend API with the API key; returns the parsed JSON answer. */
  api(path: string, body?: unknown): Promise<Record<string, unknown>>;
  /** `GET /healthz`. */
  health(): Promise<{ status: string; connections: number }>;
  /** The value of one Prometheus sample, e.g. `authsocket_connections_closed_total{code="4008"}`, or 0. */
  metric(sample: string): Promise<number>;
  close(): Promise<void>;
}

export interface StartOptions {
  /** `startGateway(config, { clock })`: pass a ManualClock to move time by hand. */
  readonly clock?: Clock;
  /** Extra environment; `AUTHSOCKET_JWT_SECRET` is set unless `keySource` says otherwise. */
  readonly env?: Environment;
  /** Which JWT key source the flags give: with `secret` the suite's secret comes from the environment. */
  readonly keySource?: 'secret' | 'flags';
  /** Bind to this port (a restart on the same address). Default 0. */
  readonly port?: number;
}

/**
 * Starts the gateway process's server in this process, the way the CLI does:
 * `startGateway(loadConfig([...flags], env))`, on 127.0.0.1, with the backend API on (for pushes).
 */
export async function startTestGateway(flags: readonly string[] = [], options: StartOptions = {}): Promise<GatewayHandle> {
  const env: Environment = {
    ...(options.keySource === 'flags' ? {} : { AUTHSOCKET_JWT_SECRET: SECRET }),
    ...options.env,
  };
  const args = ['--host', HOST, '--port', String(options.port ?? 0), '--log-level', 'silent', '--api-key', API_KEY, ...flags];
  const { config } = loadConfig(args, env);
  const running: RunningGateway = await startGateway(config, options.clock ? { clock: options.clock } : {});
  return gatewayHandle({ url: running.url, wsUrl: running.wsUrl, clock: options.clock, close: () => running.close() });
}

/** The test's view of a gateway at `url`, in this process or another (the spawned CLI). */
export function gatewayHandle({
  url,
  wsUrl,
  clock,
  close,
}: {
  url: string;
  wsUrl: string;
  clock?: Clock | undefined;
  close: () => Promise<void>;
}): GatewayHandle {
  const now = () => clock?.now() ?? Date.now();
  const ticketResponse = (token: string) =>
    fetch(`${url}/auth/ticket`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  const handle: GatewayHandle = {
    url,
    wsUrl,
    port: Number(new URL(url).port),
    clock: clock instanceof ManualClock ? clock : undefined,
    now,
    token: (sub = 'alice', rest = {}) => mint({ ...rest, now: now(), sub }),
    ticketResponse,
    async ticket(sub = 'alice') {
      const response = await ticketResponse(await handle.token(sub));
      if (response.status !== 200) throw new Error(`ticket endpoint answered ${response.status}`);
      return ((await response.json()) as { ticket: string }).ticket;
    },
    async api(path, body = {}) {
      const response = await fetch(`${url}/api${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (response.status !== 200) throw new Error(`POST /api${path} answered ${response.status}`);
      return (await response.json()) as Record<string, unknown>;
    },
    async health() {
      return (await (await fetch(`${url}/healthz`)).json()) as { status: string; connections: number };
    },
    async metric(sample) {
      const text = await (await fetch(`${url}/metrics`)).text();
      const line = text.split('\n').find((candidate) => candidate.startsWith(`${sample} `));
      return line === undefined ? 0 : Number(line.slice(sample.length + 1));
    },
    close,
  };
  return handle;
}

/** A ManualClock on a whole second near now, so JWT seconds and the gateway's ms line up exactly. */
export function wholeSecondClock(): ManualClock {
  return new ManualClock(Math.floor(Date.now() / 1000) * 1000);
}

/** Polls `check` (no fixed sleeps) until it returns true; fails after `ms`. */
export async function eventually(check: () => boolean | Promise<boolean>, ms = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
