import { type HttpProxy, PROXY_EVENTS } from '@authsocket/proxy';
import type { RedisBroker } from '@authsocket/redis';
import type { StreamForwarder } from '@authsocket/worker';
import type { BrokerStatus, Gateway } from '@authsocket/server';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface MetricsOptions {
  /** This node's id, as `authsocket_node_info{node}`. */
  readonly node: string;
  /** The Redis broker whose link and repairs are measured; without one (in memory) the broker is always ready. */
  readonly broker?: RedisBroker | undefined;
  /**
   * Add prom-client's default process metrics, which start event-loop and GC observers for the
   * rest of the process's life: right for the CLI, not for a test that starts many gateways in one
   * process. Default false.
   */
  readonly processMetrics?: boolean;
  /** The HTTP event proxy whose requests are measured, if one is configured. */
  readonly proxy?: HttpProxy | undefined;
  /** The queue path's forwarder (`--forward-stream`), if one is configured. */
  readonly forwarder?: StreamForwarder | undefined;
}

const BROKER_STATUSES: readonly BrokerStatus[] = ['connecting', 'ready', 'reconnecting', 'closed'];

export interface GatewayMetrics {
  /** This gateway's own registry (never prom-client's global one). */
  readonly registry: Registry;
  /** Counts a finished HTTP API request. */
  observeApiRequest(route: string, status: number): void;
}

/** Counts the auth lifecycle from the gateway's events, and the broker's link and repairs from the Redis broker's. */
export function createMetrics(gateway: Gateway, { node, broker, proxy, forwarder, processMetrics = false }: MetricsOptions): GatewayMetrics {
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
  // Routes are the API's own paths (and `unmatched`), statuses the few it answers: a bounded map.
  const apiRequestChildren = new Map<string, ReturnType<typeof apiRequests.labels>>();
  new Gauge({
    name: 'authsocket_connections',
    help: 'Open WebSocket connections (authenticated or not).',
    registers,
    collect() {
      this.set(gateway.connectionCount());
    },
  });

  new Gauge({
    name: 'authsocket_registry_connections',
    help: 'Authenticated connections per node as the connection registry lists them (every live node, with Redis); absent while the store does not answer.',
    labelNames: ['node'] as const,
    registers,
    async collect() {
      this.reset();
      try {
        for (const [listed, count] of Object.entries(await gateway.connectionsByNode())) this.set({ node: listed }, count);
      } catch {
        // No sample: a scrape must not fail because Redis is down.
      }
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

  const streamGaps = new Counter({
    name: 'authsocket_stream_gap_closes_total',
    help: 'Connections closed 4009 because their stream would have skipped a position (they resume).',
    registers,
  });
  new Gauge({
    name: 'authsocket_node_info',
    help: 'Always 1; names this node (--node-id), as in /healthz and the logs.',
    labelNames: ['node'] as const,
    registers,
  }).set({ node }, 1);
  new Gauge({
    name: 'authsocket_broker_status',
    help: "1 for the broker link's current status (ready, connecting, reconnecting, closed), 0 for the others.",
    labelNames: ['status'] as const,
    registers,
    collect() {
      const current = broker?.status ?? 'ready';
      for (const status of BROKER_STATUSES) this.set({ status }, status === current ? 1 : 0);
    },
  });
  if (broker) brokerMetrics(broker, registers);
  if (proxy) proxyMetrics(proxy, registers);
  if (forwarder) forwarderMetrics(forwarder, registers);

  gateway.on('streamGap', () => streamGaps.inc());
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
    observeApiRequest: (route, status) => {
      // One labelled child per route and status, looked up once: no label hashing per request.
      const key = `${route} ${status}`;
      let child = apiRequestChildren.get(key);
      if (child === undefined) {
        child = apiRequests.labels(route, String(status));
        apiRequestChildren.set(key, child);
      }
      child.inc();
    },
  };
}

/** The queue path: messages stored (new or duplicate), not stored, and the stream's length (XLEN at each scrape). */
function forwarderMetrics(forwarder: StreamForwarder, registers: Registry[]): void {
  const forwarded = new Counter({
    name: 'authsocket_forwarded_messages_total',
    help: 'Client messages appended to the forward stream (duplicate: a resend with the same data.key, stored once).',
    labelNames: ['duplicate'] as const,
    registers,
  });
  const failed = new Counter({
    name: 'authsocket_forward_failures_total',
    help: 'Client messages not appended to the forward stream (Redis down or slow): answered unavailable, not acknowledged.',
    registers,
  });
  const duration = new Histogram({
    name: 'authsocket_forward_duration_seconds',
    help: 'Time Redis took to append one message to the forward stream.',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers,
  });
  new Gauge({
    name: 'authsocket_forward_stream_length',
    help: 'Entries in the forward stream (XLEN, processed or not, up to --forward-max-length); absent while Redis does not answer.',
    registers,
    async collect() {
      this.reset();
      try {
        this.set(await forwarder.length());
      } catch {
        // No sample: a scrape must not fail because Redis is down.
      }
    },
  });
  forwarder.on('forwarded', ({ duplicate, durationMs }) => {
    forwarded.inc({ duplicate: String(duplicate) });
    duration.observe(durationMs / 1000);
  });
  forwarder.on('failed', () => failed.inc());
}

/** The HTTP proxy's requests: how long, how they ended, how many are in flight, per event. */
function proxyMetrics(proxy: HttpProxy, registers: Registry[]): void {
  const duration = new Histogram({
    name: 'authsocket_proxy_request_duration_seconds',
    help: 'HTTP proxy requests to the backend by event and outcome (ok, refused, timeout, unavailable, invalid, overloaded, circuit_open).',
    labelNames: ['event', 'outcome'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  new Gauge({
    name: 'authsocket_proxy_in_flight',
    help: 'HTTP proxy requests sent and not yet answered, by event.',
    labelNames: ['event'] as const,
    registers,
    collect() {
      for (const event of PROXY_EVENTS) this.set({ event }, proxy.inFlight(event));
    },
  });
  proxy.on('request', ({ event, outcome, durationMs }) => duration.observe({ event, outcome }, durationMs / 1000));
}

/** The Redis broker's own events: link changes, repairs from history, new epochs, control messages, resyncs. */
function brokerMetrics(broker: RedisBroker, registers: Registry[]): void {
  const statusChanges = new Counter({
    name: 'authsocket_broker_status_changes_total',
    help: 'Changes of the broker link status, by the status entered (flapping shows between scrapes).',
    labelNames: ['status'] as const,
    registers,
  });
  const gapRepairs = new Counter({
    name: 'authsocket_broker_gap_repairs_total',
    help: 'Times this node noticed it missed publications of a stream and read them from history.',
    registers,
  });
  const gapMessages = new Counter({
    name: 'authsocket_broker_gap_messages_total',
    help: 'Publications missed on the subscriber link, by outcome: recovered from history, or lost (history gone).',
    labelNames: ['outcome'] as const,
    registers,
  });
  const epochChanges = new Counter({
    name: 'authsocket_broker_epoch_changes_total',
    help: 'Streams seen in a new epoch (Redis lost their data: restart, flush, expiry).',
    registers,
  });
  const controls = new Counter({
    name: 'authsocket_broker_control_messages_total',
    help: 'Control messages (revocations) received from other nodes.',
    registers,
  });
  const controlLag = new Histogram({
    name: 'authsocket_broker_control_lag_seconds',
    help: "Time from a control message's sending to its arrival here, by the two nodes' clocks.",
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers,
  });
  const resyncs = new Counter({
    name: 'authsocket_broker_resyncs_total',
    help: 'Times the subscriber link came back after a loss and live revocations were re-read from Redis.',
    registers,
  });
  for (const status of BROKER_STATUSES) statusChanges.inc({ status }, 0);
  for (const outcome of ['recovered', 'lost']) gapMessages.inc({ outcome }, 0);

  broker.on('status', (status) => statusChanges.inc({ status }));
  broker.on('gapRepaired', ({ missed, recovered }) => {
    gapRepairs.inc();
    gapMessages.inc({ outcome: 'recovered' }, recovered);
    gapMessages.inc({ outcome: 'lost' }, Math.max(0, missed - recovered));
  });
  broker.on('epochChanged', () => epochChanges.inc());
  broker.on('control', ({ lagMs }) => {
    controls.inc();
    controlLag.observe(lagMs / 1000);
  });
  broker.on('resynced', () => resyncs.inc());
}
