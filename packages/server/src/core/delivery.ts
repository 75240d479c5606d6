import { CloseCode, MessageType } from '@authsocket/protocol';
import type { Audience, Publication, PublishOptions } from '../broker.js';
import { Arrival } from '../floors.js';
import { type Core, CorePart } from './context.js';
import { encode, type Outbound, outbound } from './frames.js';
import type { Registry } from './registry.js';
import type { Session } from './session.js';

/** Outbound traffic: publishing through the broker, and each delivery as the connection's state allows. */
export class Delivery extends CorePart {
  readonly #registry: Registry;

  constructor(core: Core) {
    super(core);
    this.#registry = core.registry;
  }

  /** `connection.send(data)`: a `message` frame for this connection alone. */
  toConnection(session: Session, data: unknown): boolean {
    return this.deliver(session, { payload: encode({ type: MessageType.Message, data }) }, this.options.clock.now());
  }

  /** Delivers a frame to one session, honouring its auth state; true if sent, buffered or held. */
  deliver(session: Session, out: Outbound, now: number): boolean {
    if (session.bufferDuringRecovery(out)) return true;
    const { stream } = out;
    if (stream !== undefined) {
      const arrival = session.floors.classify(stream, out.epoch as string, out.offset as number);
      if (arrival === Arrival.Duplicate) return false;
      if (arrival === Arrival.Gap) {
        this.#streamGap(session, out);
        return false;
      }
    }
    if (session.state === 'authenticated') {
      if (this.options.expiryPolicy === 'ignore' || now < (session.expiresAt as number)) {
        session.write(out.payload);
        if (stream !== undefined) session.floors.set(stream, out.epoch as string, out.offset as number);
        return true;
      }
      // The expiry timer has not fired yet, but the token is over: never deliver past `exp`.
      this.core.expiry.expire(session);
    }
    if (session.state !== 'held') return false;
    if (!session.holdOutbound(out, this.options.maxHeldMessages)) {
      session.close(CloseCode.SlowConsumer, 'too many messages held awaiting reauth');
      return false;
    }
    if (stream !== undefined) session.floors.set(stream, out.epoch as string, out.offset as number);
    return true;
  }

  /**
   * A position of one of the session's streams would be skipped (the broker could not fill the gap
   * from history, or the epoch changed): never deliver past it silently. The client reconnects and
   * resumes, and learns from the resume whether history still had what it missed.
   */
  #streamGap(session: Session, out: Outbound): void {
    if (session.closeCode !== undefined) return;
    const stream = out.stream as string;
    const expected = session.floors.get(stream);
    this.options.logger.warn(
      { id: session.id, stream, after: expected, got: { epoch: out.epoch, offset: out.offset } },
      'stream gap: connection closed to resume',
    );
    this.core.events.emit('streamGap', { connection: session, stream });
    session.close(CloseCode.StreamGap, 'stream gap: resume');
  }

  /** Delivers a publication (from this node or another) to the matching connections on this node. */
  deliverLocally(publication: Publication): number {
    const { to } = publication;
    const registry = this.#registry;
    const now = this.options.clock.now();
    if ('connection' in to) {
      const session = registry.byId(to.connection);
      return session && this.deliver(session, outbound(publication), now) ? 1 : 0;
    }
    const sessions = 'user' in to ? registry.ofUser(to.user) : 'topic' in to ? registry.ofTopic(to.topic) : registry.all;
    if (!sessions) return 0;
    const out = outbound(publication);
    if (sessions.size === 1) {
      // One connection (the usual user): nothing to copy.
      const [only] = sessions as Set<Session>;
      return this.deliver(only as Session, out, now) ? 1 : 0;
    }
    let count = 0;
    // Copy: a delivery can close a session, which edits the set being iterated.
    for (const session of [...sessions]) if (this.deliver(session, out, now)) count++;
    return count;
  }

  /** Publishes through the broker, which keeps history and delivers on every node, this one included. */
  publish(to: Audience, data: unknown, stream: string | undefined, options: PublishOptions | undefined): Promise<number> {
    const json = JSON.stringify(data) ?? 'null';
    const kept = this.options.history === false ? undefined : stream;
    return this.options.broker.publish({ to, data: json, ...(kept ? { stream: kept } : {}) }, options);
  }
}
