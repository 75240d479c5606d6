import { CloseCode } from '@authsocket/protocol';
import type { ResolvedOptions } from '../options.js';
import type { Core } from './context.js';

/** Users whose revocations are re-read from the store at once after the broker's link came back. */
const RESYNC_BATCH = 256;
/** A failed re-read is tried again this often, this many times, while the link stays up. */
const RESYNC_RETRY_MS = 1_000;
const RESYNC_ATTEMPTS = 30;

/** Closing what a revocation covers: on this node's own call, on the broker's word, and after a resync. */
export class Revocations {
  readonly #core: Core;
  readonly #options: ResolvedOptions;
  /** Bumped by every resync (and by `stop`), so a slower earlier one stops. */
  #run = 0;
  #stopped = false;

  constructor(core: Core) {
    this.#core = core;
    this.#options = core.options;
  }

  /** Closes every connection of `user` (or opened with `user`'s ticket) with 4403. */
  closeUser(user: string): number {
    let count = 0;
    for (const session of [...this.#core.registry.all]) {
      if (session.user === user || session.ticketUser === user) {
        session.close(CloseCode.Forbidden, 'revoked');
        count++;
      }
    }
    return count;
  }

  /**
   * The broker's link is back after a loss: revocations published meanwhile may never arrive, so
   * read each live user's from the store and close what they cover. A newer resync supersedes.
   */
  resync(): void {
    const run = ++this.#run;
    void this.#recheck(run, 1);
  }

  stop(): void {
    this.#stopped = true;
    this.#run++;
  }

  async #recheck(run: number, attempt: number): Promise<void> {
    const users = [...this.#core.registry.users()];
    let closed = 0;
    try {
      for (let start = 0; start < users.length; start += RESYNC_BATCH) {
        const batch = users.slice(start, start + RESYNC_BATCH);
        const revokedAt = await Promise.all(batch.map((user) => this.#options.revocationStore.revokedAt(user)));
        if (run !== this.#run || this.#stopped) return;
        batch.forEach((user, index) => {
          const at = revokedAt[index];
          if (at !== undefined) closed += this.#closeRevokedBefore(user, at);
        });
      }
      this.#options.logger.info({ users: users.length, closed }, 'revocations re-read after the broker link returned');
    } catch (error) {
      if (run !== this.#run || this.#stopped) return;
      const retry = attempt < RESYNC_ATTEMPTS;
      this.#options.logger.warn({ err: String(error), attempt, retry }, 'could not re-read revocations');
      if (retry) setTimeout(() => void this.#recheck(run, attempt + 1), RESYNC_RETRY_MS).unref();
    }
  }

  /** Closes `user`'s sessions whose token a revocation at `revokedAt` covers; returns how many. */
  #closeRevokedBefore(user: string, revokedAt: number): number {
    let count = 0;
    for (const session of [...(this.#core.registry.ofUser(user) ?? [])]) {
      if (session.claims && this.#core.identity.coveredByRevocation(session.claims, revokedAt)) {
        session.close(CloseCode.Forbidden, 'revoked');
        count++;
      }
    }
    return count;
  }
}
