import { type ClientMessage, CloseCode, MessageType, ProtocolError, parseClientMessage } from '@authsocket/protocol';
import { CorePart } from './context.js';
import { isPromise } from './frames.js';
import type { Session } from './session.js';

/** Frames waiting behind an async step before the socket stops reading. */
const BACKLOG_PAUSE_AT = 8;

/** Inbound frames: rate limit, parse, and the ordered backlog behind a frame's async step. */
export class Inbound extends CorePart {

  received(session: Session, data: Uint8Array | string, isBinary: boolean): void {
    if (session.isClosed()) return;
    if (isBinary) return session.close(CloseCode.UnsupportedData, 'binary frames are not accepted');
    const now = this.options.clock.now();
    const wait = session.frames.hit(this.options.messageRateLimit, now);
    if (wait > 0) return this.rateLimited(session, wait);
    let frame: ClientMessage;
    try {
      frame = parseClientMessage(data.toString());
    } catch (error) {
      const problem = error instanceof ProtocolError ? error : new ProtocolError('bad frame');
      this.options.logger.info({ id: session.id, problem: problem.message }, 'bad frame');
      return session.close(problem.closeCode, problem.message);
    }
    if (session.busy) {
      // Stop reading only once frames pile up behind a slow step (TCP then pushes back): pausing
      // and resuming on every async step costs two epoll_ctl calls per frame.
      if (session.enqueue(frame) >= BACKLOG_PAUSE_AT) session.pauseReading();
      return;
    }
    this.#process(session, frame);
  }

  /** Closes `4429` after telling the client when it may try again. */
  rateLimited(session: Session, retryAfter: number): void {
    session.writeFrame({ type: MessageType.Error, code: 'rate_limited', message: 'rate limited', retryAfter });
    session.close(CloseCode.RateLimited, 'rate limited');
  }

  /** Runs a step that began before any frame (authentication at the upgrade) as if it were one. */
  run(session: Session, step: Promise<void>): void {
    session.beginStep();
    step.then(
      () => this.#drain(session),
      (error: unknown) => this.#internalError(session, error),
    );
  }

  /** Runs one frame; frames after an async step wait in the backlog so order is kept. */
  #process(session: Session, frame: ClientMessage): void {
    let result: void | Promise<void>;
    try {
      result = this.core.commands.handle(session, frame);
    } catch (error) {
      return this.#internalError(session, error);
    }
    if (isPromise(result)) this.run(session, result);
  }

  #drain(session: Session): void {
    session.endStep();
    while (!session.busy && !session.isClosed()) {
      const next = session.dequeue();
      if (!next) break;
      this.#process(session, next);
    }
    if (!session.busy) session.resumeReading();
  }

  #internalError(session: Session, error: unknown): void {
    this.options.logger.error({ id: session.id, err: String(error) }, 'frame handling failed');
    session.close(CloseCode.InternalError, 'internal error');
  }
}
