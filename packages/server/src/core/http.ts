import { TICKET_PATH } from '@authsocket/protocol';
import type { JwksStatus } from '../jwks.js';
import type { ResolvedOptions } from '../options.js';
import type { Admission } from './admission.js';
import type { HttpReply, HttpRequest } from './ports.js';

/** Bodies of refusals: one per status, so no cause leaks through the body. */
export const REFUSAL_BODY: Readonly<Record<number, string>> = {
  400: 'bad request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not found',
  405: 'method not allowed',
  429: 'too many requests',
  503: 'service unavailable',
};

/** Readiness: 200 only while this node can serve (broker ready, not closing). Balancers probe it. */
const HEALTH_PATH = '/healthz';
/** Liveness: 200 while the process answers HTTP at all; restart the process when it does not. */
const LIVE_PATH = '/livez';

/** How long a browser may cache the ticket endpoint's preflight answer, in seconds. */
const PREFLIGHT_MAX_AGE_S = 600;

/** What the health route reports of the gateway. */
export interface NodeStatus {
  readonly closing: boolean;
  readonly connections: number;
  /** With a JWKS: `stale` while cached keys serve an IdP outage, `unavailable` once none are usable. */
  readonly jwks?: JwksStatus | undefined;
}

/** The gateway's own HTTP routes: `POST /auth/ticket`, `GET /healthz`, `GET /livez`. */
export class HttpRoutes {
  readonly #options: ResolvedOptions;
  readonly #admission: Admission;
  readonly #status: () => NodeStatus;

  constructor(options: ResolvedOptions, admission: Admission, status: () => NodeStatus) {
    this.#options = options;
    this.#admission = admission;
    this.#status = status;
  }

  /** Answers `request` when it is for one of the routes; false otherwise. */
  serve(request: HttpRequest, reply: HttpReply): boolean {
    const path = request.url.split('?', 1)[0];
    const { method } = request;
    if (path === TICKET_PATH && this.#options.ticket !== 'off') {
      const cors = this.#cors(request);
      if (method === 'OPTIONS' && cors) {
        reply.empty(204, {
          ...cors,
          'Access-Control-Allow-Methods': 'POST',
          'Access-Control-Allow-Headers': 'Authorization, Content-Type',
          'Access-Control-Max-Age': String(PREFLIGHT_MAX_AGE_S),
        });
      } else if (method !== 'POST') {
        reply.json(405, { error: REFUSAL_BODY[405] }, { Allow: 'POST', ...cors });
      } else {
        void this.#admission.issueTicket(request, cors ? withHeaders(reply, cors) : reply);
      }
      return true;
    }
    if (path === HEALTH_PATH && (method === 'GET' || method === 'HEAD')) {
      // A node that cannot reach its broker, or has no usable JWKS keys, answers 503, so load
      // balancers send new clients elsewhere. Stale keys (an IdP outage within the stale bound)
      // still serve: 200, with `jwks: 'stale'` to see.
      const { closing, connections, jwks } = this.#status();
      const broker = this.#options.broker.status ?? 'ready';
      const status = closing ? 'closing' : broker === 'ready' && jwks !== 'unavailable' ? 'ok' : 'degraded';
      const body = { status, broker, ...(jwks === undefined ? {} : { jwks }), node: this.#options.nodeId, connections };
      reply.json(status === 'ok' ? 200 : 503, body);
      return true;
    }
    if (path === LIVE_PATH && (method === 'GET' || method === 'HEAD')) {
      reply.json(200, { status: 'live', node: this.#options.nodeId });
      return true;
    }
    return false;
  }

  /**
   * CORS for the ticket endpoint, so a browser app on another origin can get a ticket: only for an
   * `Origin` listed in `allowedOrigins` (the list that also guards the upgrade), never for any
   * origin. The JWT travels in `Authorization`, not in a cookie, so no credentials mode is needed.
   */
  #cors(request: HttpRequest): Readonly<Record<string, string>> | undefined {
    const origin = request.header('origin');
    const allowed = this.#options.allowedOrigins;
    if (origin === undefined || allowed === undefined || !allowed.includes(origin)) return undefined;
    return { 'Access-Control-Allow-Origin': origin, Vary: 'Origin' };
  }
}

/** `reply` with `extra` headers added to every answer. */
function withHeaders(reply: HttpReply, extra: Readonly<Record<string, string>>): HttpReply {
  return {
    json: (status, body, headers) => reply.json(status, body, { ...headers, ...extra }),
    empty: (status, headers) => reply.empty(status, { ...headers, ...extra }),
  };
}
