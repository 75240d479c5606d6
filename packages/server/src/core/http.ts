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
      if (method !== 'POST') reply.json(405, { error: REFUSAL_BODY[405] }, { Allow: 'POST' });
      else void this.#admission.issueTicket(request, reply);
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
}
