import type { ReactElement } from 'react';
import { formatTime } from '../format.js';
import { useAppSelector } from '../store/index.js';

/** What the connection did, newest first: the Redux middleware's lifecycle actions, in words. */
export function EventLog(): ReactElement {
  const log = useAppSelector((state) => state.activity.log);
  return (
    <section className="card log" aria-labelledby="log-title">
      <header className="card-header">
        <h2 id="log-title">Event log</h2>
        <span className="card-sub">newest first</span>
      </header>
      <ol className="log-lines" data-testid="event-log">
        {log.map((line) => (
          <li key={line.id} className={`log-line log-${line.tone}`}>
            <time>{formatTime(line.at)}</time>
            <span>{line.text}</span>
          </li>
        ))}
      </ol>
    </section>
  );
}
