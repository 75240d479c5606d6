import { MessageType, type PresenceMember, type PresenceRequestMessage } from '@authsocket/protocol';
import type { JWTPayload } from 'jose';
import { HandlerError } from '../errors.js';
import type { PresenceOptions } from '../options.js';
import { CorePart } from './context.js';
import { errorFrame } from './message-context.js';
import type { Session } from './session.js';

/** How a subscribe's entry into a topic's presence went: `gone` when the session closed or logged out meanwhile. */
export type Admission = 'joined' | 'full' | 'gone';

/** Which topics have presence: exact names, and prefixes (entries ending in `*`). */
function topicMatcher(topics: readonly string[] | undefined): (topic: string) => boolean {
  if (topics === undefined) return () => true;
  const exact = new Set(topics.filter((entry) => !entry.endsWith('*')));
  const prefixes = topics.filter((entry) => entry.endsWith('*')).map((entry) => entry.slice(0, -1));
  return (topic) => exact.has(topic) || prefixes.some((prefix) => topic.startsWith(prefix));
}

/**
 * Presence: who is subscribed to which topic, in the presence store (every node's members), and
 * the `join` / `leave` frames. A session enters a topic's presence where it joins the topic
 * (subscribe: capped; resume and server-side topics: not) and leaves it in the registry's one
 * place topics are left (`Registry.leaveTopic` / `unbind`), so unsubscribe, logout and close stay in step.
 */
export class Presence extends CorePart {
  readonly #config: PresenceOptions | undefined = this.options.presence === false ? undefined : this.options.presence;
  readonly #matches = topicMatcher(this.#config?.topics);

  /** Whether `topic` has presence. */
  has(topic: string): boolean {
    return this.#config !== undefined && this.#matches(topic);
  }

  /** The member `session` is on its topics: user, connection id, and the configured claim as `info`. */
  member(session: Session): PresenceMember {
    const claim = this.#config?.infoClaim;
    const info = claim === undefined ? undefined : (session.claims as JWTPayload | undefined)?.[claim];
    return { user: session.user as string, connection: session.id, ...(info === undefined ? {} : { info }) };
  }

  /**
   * A subscribe's entry into the topic's presence, within the cap: `full` adds nothing. Rejects with
   * `StoreUnavailableError` when the store cannot answer (the subscribe is then refused: a member
   * the store never saw would be subscribed but not listed, and the cap could not hold).
   */
  async admit(session: Session, topic: string): Promise<Admission> {
    const member = this.member(session);
    const joined = await this.options.presenceStore.join(topic, member, this.#config?.maxMembers);
    // Closed, or logged out (a new id), while the store answered: nothing would remove this entry later.
    if (session.isClosed() || session.id !== member.connection) {
      if (joined) this.withdraw(topic, member.connection);
      return 'gone';
    }
    return joined ? 'joined' : 'full';
  }

  /**
   * A resumed or server-side topic's entry, past the cap: the resume restores a subscription the
   * client held (and was counted for) before, a server-side topic is the backend's decision. Not
   * awaited; once the store answered, an entry whose session left meanwhile is taken back (its
   * leave may have reached the store first, e.g. while the store waited for its lease).
   */
  enter(session: Session, topic: string): void {
    if (!this.has(topic) || session.isClosed() || session.user === undefined) return;
    const member = this.member(session);
    this.options.presenceStore.join(topic, member).then(
      () => {
        if (session.isClosed() || session.id !== member.connection || !session.topics.has(topic)) this.withdraw(topic, member.connection);
      },
      (error: unknown) => this.options.logger.warn({ id: session.id, topic, err: String(error) }, 'presence join failed'),
    );
  }

  /** Takes back an admitted entry the session never joined the topic with (it closed or logged out meanwhile). */
  withdraw(topic: string, connection: string): void {
    this.options.presenceStore.leave(topic, connection);
  }

  /** The registry's hook: `session` left `topic` (unsubscribe, logout, close). */
  left(session: Session, topic: string): void {
    if (!this.has(topic) || session.user === undefined) return;
    this.options.presenceStore.leave(topic, session.id);
    this.announce(session, topic, 'leave');
  }

  /**
   * A `join` or `leave` frame to the topic's subscribers on every node, through the broker and not
   * kept in history (no offset: a client that missed one asks for `presence` again).
   */
  announce(session: Session, topic: string, kind: 'join' | 'leave'): void {
    if (!this.#config?.joinLeave || !this.has(topic)) return;
    const data = JSON.stringify(this.member(session));
    this.options.broker.publish({ to: { topic }, data, kind }).catch((error: unknown) => {
      this.options.logger.warn({ id: session.id, topic, err: String(error) }, `presence ${kind} frame not published`);
    });
  }

  /** This node's members, for the store to rewrite after an outage. */
  *held(): Iterable<readonly [string, PresenceMember]> {
    for (const session of this.core.registry.all) {
      if (session.user === undefined) continue;
      for (const topic of session.topics) if (this.has(topic)) yield [topic, this.member(session)];
    }
  }

  /** A `presence` request: who is on `topic`, if this user may see it. */
  async query(session: Session, frame: PresenceRequestMessage, claims: JWTPayload): Promise<void> {
    const { id, topic } = frame;
    const named = `'${topic.slice(0, 64)}'`;
    if (!this.has(topic)) return session.writeFrame(errorFrame(new HandlerError('bad_request', `topic ${named} has no presence`), id, ''));
    const user = session.user;
    let allowed: boolean;
    try {
      allowed = await this.core.auth.mayReadPresence(session, claims, topic);
    } catch (error) {
      this.options.logger.warn({ id: session.id, err: String(error) }, 'presence authorization failed');
      allowed = false;
    }
    if (session.user !== user || session.isClosed()) return;
    if (!allowed) {
      return session.writeFrame(errorFrame(new HandlerError('forbidden', `not allowed to read the presence of ${named}`), id, ''));
    }
    const store = this.options.presenceStore;
    let answer: { count: number; members?: readonly PresenceMember[] };
    try {
      if (frame.countOnly === true) {
        answer = { count: await store.count(topic) };
      } else {
        const members = await store.members(topic);
        answer = { count: members.length, members };
      }
    } catch (error) {
      // A store outage becomes `unavailable` (temporary); anything else is logged and refused alike.
      this.options.logger.warn({ id: session.id, topic, err: String(error) }, 'presence read failed');
      if (session.isClosed()) return;
      return session.writeFrame(errorFrame(new HandlerError('unavailable', 'presence is unavailable, try again'), id, ''));
    }
    if (session.user !== user || session.isClosed()) return;
    session.writeFrame({ type: MessageType.Presence, id, topic, ...answer });
  }
}
