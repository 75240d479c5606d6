import { type ReactElement, useState } from 'react';
import { askBackend, useAppDispatch } from '../store/index.js';

/** RPC through the gateway's HTTP event proxy to the example backend (examples/proxy-backend). */
export function BackendCard(): ReactElement {
  const dispatch = useAppDispatch();
  const [answer, setAnswer] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const ask = (method: 'time' | 'later') => {
    setBusy(true);
    void dispatch(askBackend(method)).then((text) => {
      setAnswer(text);
      setBusy(false);
    });
  };

  return (
    <section className="card backend" aria-labelledby="backend-title">
      <header className="card-header">
        <h2 id="backend-title">Your backend</h2>
      </header>
      <div className="button-row">
        <button type="button" className="button button-secondary" onClick={() => ask('time')} disabled={busy}>
          Ask the backend the time
        </button>
        <button type="button" className="button button-secondary" onClick={() => ask('later')} disabled={busy}>
          Start a job
        </button>
      </div>
      <p className="backend-answer" data-testid="backend-answer" aria-live="polite">
        {answer ?? 'An rpc frame goes over this socket; the gateway POSTs it, signed, to a stateless backend and sends back its answer.'}
      </p>
      <p className="hint">
        <code>client.rpc(method)</code> → <code>rpc</code> frame → <code>--proxy-rpc-url</code> (an Express app, <code>examples/proxy-backend</code>) →{' '}
        <code>result</code> frame. A job answers at once and reports back later through <code>POST /api/connections/:id/messages</code>, to
        this tab only.
      </p>
    </section>
  );
}
