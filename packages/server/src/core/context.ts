import type { DeadlineQueue } from '../deadlines.js';
import type { EventSink } from '../events.js';
import type { IdentityVerifier } from '../identity.js';
import type { ResolvedOptions } from '../options.js';
import type { CachedVerifier } from '../verification-cache.js';
import type { Auth } from './auth.js';
import type { Commands } from './commands.js';
import type { Delivery } from './delivery.js';
import type { Expiry } from './expiry.js';
import type { Inbound } from './inbound.js';
import type { Listing } from './listing.js';
import type { MessageHandler } from './ports.js';
import type { Presence } from './presence.js';
import type { Recovery } from './recovery.js';
import type { Registry } from './registry.js';
import type { SubscriptionTokens } from './subscription-tokens.js';
import type { TopicAccess } from './topic-access.js';

/**
 * The collaborators of one gateway, made once and shared by its sessions: each reads the others
 * through this record (delivery asks expiry, expiry writes through sessions, …) instead of holding
 * a closure per connection.
 */
export interface Core {
  readonly options: ResolvedOptions;
  readonly events: EventSink;
  readonly registry: Registry;
  /** The cluster-wide registry's writer (`options.connectionStore`). */
  readonly listing: Listing;
  readonly deadlines: DeadlineQueue;
  readonly identity: IdentityVerifier;
  readonly perMessage: CachedVerifier;
  readonly handler: MessageHandler;
  readonly delivery: Delivery;
  readonly expiry: Expiry;
  readonly recovery: Recovery;
  readonly presence: Presence;
  readonly auth: Auth;
  readonly access: TopicAccess;
  readonly subscriptionTokens: SubscriptionTokens;
  readonly commands: Commands;
  readonly inbound: Inbound;
  /** Called when the last session left, while the gateway is closing. */
  drained: (() => void) | undefined;
}

/** A collaborator of the core: it reads its own options and its siblings through `core`. */
export abstract class CorePart {
  protected readonly core: Core;
  protected readonly options: ResolvedOptions;

  constructor(core: Core) {
    this.core = core;
    this.options = core.options;
  }
}
