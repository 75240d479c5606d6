import type { Gateway } from '@authsocket/server';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface GatewayMetrics {
  /** This gateway's own registry (never prom-client's global one). */
  readonly registry: Registry;
  /** Counts a finished HTTP API request. */
  observeApiRequest(route: string, status: number): void;
}

/**
 * Counts the auth lifecycle from the gateway's events. `processMetrics` adds prom-client's default
 * process metrics, which start event-loop and GC observers for the rest of the process's life:
 * right for the CLI, not for a test that starts many gateways in one process.
 */
export function createMetrics(gateway: Gateway, { processMetrics = false } = {}): GatewayMetrics {
  const registry = new Registry();
  const registers = [registry];
  if (processMetrics) collectDefaultMetrics({ register: registry });

  const tickets = new Counter({
    name: 'authsocket_tickets_total',
    help: 'Tickets by outcome: issued by POST /auth/ticket, redeemed or rejected at the upgrade.',
    labelNames: ['outcome'] as const,
    registers,
  });
  const authFailures = new Counter({
    name: 'authsocket_auth_failures_total',
    help: 'Refused credentials by stage (ticket_endpoint, upgrade, auth, per_message) and reason.',
    labelNames: ['stage', 'reason'] as const,
    registers,
  });
  const authentications = new Counter({
    name: 'authsocket_authentications_total',
    help: 'Connections authenticated, by method (ticket, message, reauth, ...).',
    labelNames: ['method'] as const,
    registers,
  });
  const expiries = new Counter({
    name: 'authsocket_expiries_total',
    help: 'Connections whose token expired, by expiry policy.',
    labelNames: ['policy'] as const,
    registers,
  });
  const reauths = new Counter({
    name: 'authsocket_reauthentications_total',
    help: 'In-band reauthentications: before the token expired, or after (messages were held).',
    labelNames: ['when'] as const,
    registers,
  });
  const reauthLatency = new Histogram({
    name: 'authsocket_reauth_latency_seconds',
    help: 'Time from token expiry to a valid reauth, for connections that were held.',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  });
  const replayed = new Counter({
    name: 'authsocket_replayed_messages_total',
    help: 'Messages replayed from history to connections that resumed from a stream position.',
    registers,
  });
  const closes = new Counter({
    name: 'authsocket_connections_closed_total',
    help: 'Closed WebSocket connections by close code.',
    labelNames: ['code'] as const,
    registers,
  });
  const apiRequests = new Counter({
    name: 'authsocket_api_requests_total',
    help: 'HTTP API requests by route and status.',
    labelNames: ['route', 'status'] as const,
    registers,
  });
  new Gauge({
    name: 'authsocket_connections',
    help: 'Open WebSocket connections (authenticated or not).',
    registers,
    collect() {
      this.set(gateway.connectionCount());
    },
  });

  new Gauge({
    name: 'authsocket_held_connections',
    help: 'Connections whose token expired and whose deliveries are held awaiting reauth.',
    registers,
    collect() {
      this.set(gateway.stats().held);
    },
  });
  new Gauge({
    name: 'authsocket_held_messages',
    help: 'Messages held for connections awaiting reauth (the held-queue depth, all connections).',
    registers,
    collect() {
      this.set(gateway.stats().heldMessages);
    },
  });

  gateway.on('ticket', ({ outcome }) => tickets.inc({ outcome }));
  gateway.on('authFailed', ({ stage, reason }) => authFailures.inc({ stage, reason }));
  gateway.on('authenticated', ({ method }) => authentications.inc({ method }));
  gateway.on('expired', ({ policy }) => expiries.inc({ policy }));
  gateway.on('reauthenticated', ({ latencyMs }) => {
    reauths.inc({ when: latencyMs === undefined ? 'before_expiry' : 'after_expiry' });
    if (latencyMs !== undefined) reauthLatency.observe(latencyMs / 1000);
  });
  gateway.on('replayed', ({ count }) => replayed.inc(count));
  gateway.on('close', ({ code }) => {
    closes.inc({ code: String(code) });
  });

  return {
    registry,
    observeApiRequest: (route, status) => apiRequests.inc({ route, status: String(status) }),
  };
}
