import type { EventEmitter } from 'node:events';
import type { JWTPayload } from 'jose';
import type { ExpiryPolicy } from './options.js';
import type { Connection } from './session.js';

/** How a connection proved its identity. */
export type AuthMethod = 'ticket' | 'handshake_token' | 'message' | 'reauth' | 'per_message';
/** Where a credential was refused. */
export type AuthStage = 'ticket_endpoint' | 'upgrade' | 'auth' | 'per_message';

/** Events for observability (metrics, audit logs). Listeners must not throw. */
export interface GatewayEvents {
  authenticated: [{ connection: Connection; method: AuthMethod }];
  authFailed: [{ stage: AuthStage; reason: string }];
  ticket: [{ outcome: 'issued' | 'redeemed' | 'rejected' }];
  expired: [{ connection: Connection; policy: ExpiryPolicy }];
  reauthenticated: [{ connection: Connection; latencyMs: number | undefined }];
  replayed: [{ connection: Connection; count: number }];
  /** A connection was closed `4009` because one of its streams would have skipped a position. */
  streamGap: [{ connection: Connection; stream: string }];
  close: [{ connection: Connection; code: number }];
}


/** Who a connection is, as far as the gateway knows. */
export interface Identity {
  readonly user: string;
  readonly claims: JWTPayload;
  readonly expiresAt: number;
}

/** What the edge modules need of the gateway's emitter to report events. */
export type EventSink = Pick<EventEmitter<GatewayEvents>, 'emit'>;
