import type { Session } from './session.js';

/** Called for each topic a session leaves, wherever it leaves from (presence keeps in step here). */
export type TopicLeft = (session: Session, topic: string) => void;

/** Who is connected: every session, and indexes by id, by user and by topic. */
export class Registry {
  readonly all = new Set<Session>();
  readonly #left: TopicLeft;
  readonly #byId = new Map<string, Session>();
  readonly #byUser = new Map<string, Set<Session>>();
  readonly #byTopic = new Map<string, Set<Session>>();

  constructor(left: TopicLeft = () => {}) {
    this.#left = left;
  }

  add(session: Session): void {
    this.all.add(session);
    this.#byId.set(session.id, session);
  }

  remove(session: Session): void {
    this.all.delete(session);
    this.#byId.delete(session.id);
  }

  /** Re-indexes `session` under the id `rename` gives it. */
  renamed(session: Session, rename: () => string): void {
    this.#byId.delete(session.id);
    this.#byId.set(rename(), session);
  }

  /** The session with connection id `id`, if it is on this node. */
  byId(id: string): Session | undefined {
    return this.#byId.get(id);
  }

  /** Sessions of `user`, if any. */
  ofUser(user: string): ReadonlySet<Session> | undefined {
    return this.#byUser.get(user);
  }

  /** Every user with a bound session. */
  users(): IterableIterator<string> {
    return this.#byUser.keys();
  }

  /** Subscribers of `topic`, if any. */
  ofTopic(topic: string): ReadonlySet<Session> | undefined {
    return this.#byTopic.get(topic);
  }

  /** Indexes `session` under its (just bound) user. */
  addUser(session: Session, user: string): void {
    add(this.#byUser, user, session);
  }

  joinTopic(session: Session, topic: string): void {
    add(this.#byTopic, topic, session);
    session.addTopic(topic);
  }

  leaveTopic(session: Session, topic: string): void {
    if (!session.topics.has(topic)) return;
    remove(this.#byTopic, topic, session);
    session.removeTopic(topic);
    this.#left(session, topic);
  }

  /** Removes `session` from its user's and its topics' indexes (logout, close). */
  unbind(session: Session): void {
    if (session.user !== undefined) remove(this.#byUser, session.user, session);
    const topics = [...session.topics];
    session.clearTopics();
    for (const topic of topics) {
      remove(this.#byTopic, topic, session);
      this.#left(session, topic);
    }
  }
}

function add(index: Map<string, Set<Session>>, key: string, session: Session): void {
  let sessions = index.get(key);
  if (!sessions) {
    sessions = new Set();
    index.set(key, sessions);
  }
  sessions.add(session);
}

function remove(index: Map<string, Set<Session>>, key: string, session: Session): void {
  const sessions = index.get(key);
  sessions?.delete(session);
  if (sessions?.size === 0) index.delete(key);
}
