import type { Deadline } from '../deadlines.js';
import { classify, HandlerError, TokenError } from '../errors.js';
import type { VerifiedToken } from '../token-verifier.js';
import { CorePart } from './context.js';
import type { Session, TopicGrant } from './session.js';

/** A topic granted by a subscription token, until its `exp`; the deadline's argument. */
class TokenGrant {
  deadline: Deadline | undefined;

  constructor(
    readonly session: Session,
    readonly topic: string,
    readonly expiresAt: number,
  ) {}
}

/**
 * Subscription tokens: a JWT naming one topic (`subscriptionTokenClaim`) and the connection's user,
 * verified like connection tokens (keys, algorithms, `iss`, `aud`, revocations). It grants that
 * subscribe without the permissions; at its `exp` the server ends the subscription with
 * `unsubscribed {reason: 'expired'}`, unless a fresher token renewed it. Tokens are never logged.
 */
export class SubscriptionTokens extends CorePart {

  /** The token's expiry (ms) when it grants `topic` to this session, else the refusal for the client. */
  async verify(session: Session, topic: string, token: string): Promise<number | HandlerError> {
    const claim = this.options.subscriptionTokenClaim;
    if (claim === false) return this.#refuse(session, 'disabled', 'forbidden', 'subscription tokens are not accepted');
    let verified: VerifiedToken;
    try {
      verified = await this.core.identity.verify(token, 'subscription');
    } catch (error) {
      if (error instanceof TokenError && error.reason === 'expired') {
        return this.#refuse(session, 'expired', 'token_expired', 'subscription token expired');
      }
      const { httpStatus, reason } = classify(error);
      if (httpStatus === 503) return this.#refuse(session, reason, 'unavailable', 'service unavailable');
      return this.#refuse(session, reason, 'forbidden', 'invalid subscription token');
    }
    if (verified.user !== session.user) {
      return this.#refuse(session, 'user_mismatch', 'forbidden', 'subscription token is for another user');
    }
    const named = verified.claims[claim];
    if (typeof named !== 'string') return this.#refuse(session, 'claims', 'forbidden', 'invalid subscription token');
    if (named !== topic) return this.#refuse(session, 'topic_mismatch', 'forbidden', 'subscription token is for another topic');
    return verified.expiresAt;
  }

  /** The grant for a topic just joined (or renewed) with a token expiring at `expiresAt`. */
  grant(session: Session, topic: string, expiresAt: number): TopicGrant {
    const grant = new TokenGrant(session, topic, expiresAt);
    grant.deadline = this.core.deadlines.schedule(expiresAt, this.#expired, grant);
    return grant;
  }

  readonly #expired = (grant: TokenGrant): void => {
    const { session, topic } = grant;
    // A renewal replaced the grant (and cancelled this deadline); a leave removed it.
    if (session.grantOf(topic) !== grant || session.isClosed()) return;
    // The connection's own permissions may cover the topic anyway: then it stays, held by them.
    if (this.core.access.permitsSubscribe(session, topic)) return session.grant(topic, 'permissions');
    this.core.access.end(session, topic, 'expired', 'subscription token expired');
  };

  #refuse(session: Session, reason: string, code: 'forbidden' | 'token_expired' | 'unavailable', message: string): HandlerError {
    this.options.logger.info({ id: session.id, user: session.user, reason }, 'subscription token refused');
    return new HandlerError(code, message);
  }
}
