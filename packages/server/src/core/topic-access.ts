import { LIMITS, MessageType, type UnsubscribeReason, topicStream } from '@authsocket/protocol';
import type { JWTPayload } from 'jose';
import { HandlerError } from '../errors.js';
import { GATEWAY_OPTIONS } from '../options.js';
import { claimTopics, MalformedClaim, Permissions, type TopicAction } from '../permissions.js';
import { CorePart, type Core } from './context.js';
import { isPromise } from './frames.js';
import { decide, TopicRequest } from './message-context.js';
import type { Verdict } from './ports.js';
import type { Session } from './session.js';

/** A decision on one topic request; `message` is the refusal's text when it is not the usual one. */
export interface Access {
  readonly allow: boolean;
  readonly data?: unknown;
  readonly message?: string;
  /** The permissions allowed it: a reauth re-checks the topic against the new claims. */
  readonly byPermissions?: boolean;
}

const DENIED: Access = { allow: false };
const BY_PERMISSIONS: Access = { allow: true, byPermissions: true };
/** The `authorize` used when the operator gave none: it allows everything. */
const DEFAULT_AUTHORIZE = GATEWAY_OPTIONS.authorize.default;

/**
 * The one answer to "may this session do action X on topic T" (subscribe, publish, resume,
 * presence), and the one way a connection leaves a topic (its `unsubscribe`, or the server ending
 * it with `unsubscribed`).
 *
 * With `permissions` or `permissionsClaim` configured, they decide every action and `authorize` is
 * not asked; a handler's `onSubscribe` / `onPublish` still runs after their yes (its verdict and
 * `data` are final). Without them: the handler's hook, else `authorize`, as before.
 */
export class TopicAccess extends CorePart {
  readonly #permissions: Permissions;

  constructor(core: Core) {
    super(core);
    this.#permissions = new Permissions(this.options.permissions, this.options.permissionsClaim);
  }

  may(
    session: Session,
    claims: JWTPayload,
    action: TopicAction,
    topic: string,
    data?: unknown,
    token?: string,
  ): Access | Promise<Access> {
    const { handler } = this.core;
    const user = session.user as string;
    const hook = action === 'subscribe' ? handler.onSubscribe : action === 'publish' ? handler.onPublish : undefined;
    let byPermissions = false;
    if (!this.#permissions.empty) {
      const answer = this.#permissions.check(claims, action, topic);
      if (answer instanceof MalformedClaim) return this.#malformed(session, answer);
      if (!answer) return DENIED;
      if (hook === undefined) return BY_PERMISSIONS;
      byPermissions = true;
    }
    const verdict =
      hook === undefined
        ? this.options.authorize(user, action, topic)
        : hook.call(handler, new TopicRequest(this.core, session, user, claims, topic, data, token));
    if (!isPromise(verdict)) return settle(verdict, byPermissions);
    return verdict.then((value) => settle(value, byPermissions));
  }

  /** Leaves `topic`: what the `unsubscribe` frame does, and the server's `unsubscribed`. */
  leave(session: Session, topic: string): void {
    this.core.registry.leaveTopic(session, topic);
    session.floors.delete(topicStream(topic));
  }

  /** The server ends the subscription: the connection leaves `topic` and is told why. */
  end(session: Session, topic: string, reason: UnsubscribeReason, message: string): void {
    this.leave(session, topic);
    session.writeFrame({ type: MessageType.Unsubscribed, topic, reason, message });
  }

  /**
   * After a reauth bound new claims: every topic held by the permissions or by `subscribeClaim` is
   * checked against them, and those no longer allowed end with `unsubscribed {reason: 'forbidden'}`.
   * A handler is not asked again (its yes stands until the backend says otherwise).
   */
  recheck(session: Session): void {
    const claims = session.claims as JWTPayload;
    let ended: string[] | undefined;
    let listed: readonly string[] | MalformedClaim | undefined;
    for (const [topic, grant] of session.grants()) {
      if (grant !== 'permissions' && grant !== 'claim') continue;
      if (grant === 'claim') {
        listed ??= this.claimedTopics(claims);
        if (!(listed instanceof MalformedClaim) && listed.includes(topic)) continue;
      }
      if (this.#permissions.check(claims, 'subscribe', topic) === true) {
        if (grant === 'claim') session.grant(topic, 'permissions');
        continue;
      }
      (ended ??= []).push(topic);
    }
    for (const topic of ended ?? []) this.end(session, topic, 'forbidden', `no longer allowed to subscribe to '${topic.slice(0, 64)}'`);
  }

  /** The topics `subscribeClaim` names in `claims` (none without the option), or why the claim is unusable. */
  claimedTopics(claims: JWTPayload): readonly string[] | MalformedClaim {
    const name = this.options.subscribeClaim;
    return name === undefined ? [] : claimTopics(name, claims[name], LIMITS.topicLength);
  }

  /**
   * Whether the session's user may read who is on `topic`. Without permissions, when a handler's
   * `onSubscribe` decides who may join (the HTTP proxy) or the operator gave no `authorize`, only a
   * subscriber may: its subscribe's check said yes to the topic, where `authorize` alone (the
   * default allows all) would show anyone any topic's members.
   */
  mayReadPresence(session: Session, claims: JWTPayload, topic: string): boolean | Promise<boolean> {
    const subscribersOnly = this.options.authorize === DEFAULT_AUTHORIZE || this.core.handler.onSubscribe !== undefined;
    if (this.#permissions.empty && subscribersOnly && !session.topics.has(topic)) return false;
    const access = this.may(session, claims, 'presence', topic);
    return isPromise(access) ? access.then((value) => value.allow) : access.allow;
  }

  /** Whether the permissions (not a handler or `authorize`) let the session's own claims subscribe to `topic`. */
  permitsSubscribe(session: Session, topic: string): boolean {
    return !this.#permissions.empty && this.#permissions.check(session.claims as JWTPayload, 'subscribe', topic) === true;
  }

  #malformed(session: Session, malformed: MalformedClaim): Access {
    if (!malformed.reported) this.options.logger.warn({ id: session.id, claim: this.options.permissionsClaim }, malformed.message);
    malformed.reported = true;
    return { allow: false, message: malformed.message };
  }
}

/** A handler's or `authorize`'s verdict as an `Access`; `byPermissions` when the permissions allowed it first. */
function settle(verdict: Verdict, byPermissions: boolean): Access {
  const decided = decide(verdict);
  return byPermissions && decided.allow ? { ...decided, byPermissions } : decided;
}

/** A refusal of a topic request as the client's `error` frame sees it. */
export function refusal(access: Access, fallback: string): HandlerError {
  return new HandlerError('forbidden', access.message ?? fallback, { data: access.data });
}
