import { DEMO_USERS } from './demo-users.js';

const escape = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

interface InfoPageOptions {
  readonly demo: boolean;
  readonly wsPath: string;
  readonly apiEnabled: boolean;
}

/** The page at `/` until the demo web app is built: what this gateway serves and how to try it. */
export function infoPage({ demo, wsPath, apiEnabled }: InfoPageOptions): string {
  const rows: [string, string][] = [
    [`GET ${wsPath} (WebSocket)`, 'subprotocol <code>authsocket.v1</code>, plus <code>ticket.&lt;ticket&gt;</code> or a first <code>auth</code> frame'],
    ['POST /auth/ticket', '<code>Authorization: Bearer &lt;jwt&gt;</code> → <code>{ticket, expiresAt}</code>, single use'],
    ['GET /healthz', 'readiness for load balancers: 200 only while the broker answers'],
    ['GET /livez', 'liveness: 200 while the process serves'],
    ['GET /metrics', 'Prometheus metrics of the auth lifecycle'],
  ];
  if (demo) {
    rows.push(
      ['POST /auth/login', `demo users ${[...DEMO_USERS.keys()].map((u) => `<code>${escape(u)}</code>`).join(', ')} (passwords in the README) → 2-minute JWT`],
      ['POST /auth/refresh', '<code>Authorization: Bearer &lt;jwt&gt;</code> → a fresh 2-minute JWT'],
    );
  }
  if (apiEnabled) {
    rows.push(
      ['POST /api/users/:user/messages', '<code>{"data": …}</code> to every connection of a user'],
      ['POST /api/topics/:topic/messages', '<code>{"data": …}</code> to a topic’s subscribers'],
      ['POST /api/broadcast', '<code>{"data": …}</code> to every authenticated connection'],
      ['POST /api/users/:user/revoke', 'close the user’s connections with 4403'],
      ['GET /api/users/:user/connections', 'the user’s connections on every node: <code>{connections: [{id, user, node, openedAt, expiresAt, state}], count, connectedLocally, node}</code>'],
      ['GET /api/connections/:id', 'one connection’s record, on any node (<code>404</code> when unknown)'],
      ['GET /api/topics/:topic/presence', 'who is subscribed, on every node, with <code>--presence</code>: <code>{topic, count, members}</code> (<code>?countOnly=true</code>: no members)'],
      ['POST /api/connections/:id/messages', '<code>{"data": …}</code> to one connection, on any node'],
      ['DELETE /api/connections/:id', 'close one connection (<code>?code=4000-4999&amp;reason=…</code>)'],
    );
  }
  const table = rows.map(([endpoint, what]) => `<tr><th>${escape(endpoint)}</th><td>${what}</td></tr>`).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>authsocket gateway</title>
<style>
body { font: 16px/1.5 system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; color: #1d2433; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .4rem .6rem; border-bottom: 1px solid #e3e6ec; }
th { white-space: nowrap; font-family: ui-monospace, monospace; font-size: .9em; }
code { font-size: .9em; }
</style>
</head>
<body>
<h1>authsocket gateway</h1>
<p>Authenticated WebSockets: tickets, JWT auth, in-band reauth without message loss.${demo ? ' Running in <strong>demo</strong> mode.' : ''}</p>
<table>
${table}
</table>
${apiEnabled ? '<p>The <code>/api</code> endpoints need <code>Authorization: Bearer &lt;api key&gt;</code>.</p>' : ''}
</body>
</html>
`;
}
