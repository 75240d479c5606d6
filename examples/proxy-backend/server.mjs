// A stateless backend behind `authsocket serve --proxy-*-url http://127.0.0.1:3000/authsocket/<event>`.
// Run: AUTHSOCKET_PROXY_SECRET=... AUTHSOCKET_API_KEY=... GATEWAY_URL=http://127.0.0.1:8080 PORT=3000 node server.mjs
import { createHmac, timingSafeEqual } from 'node:crypto';
import express from 'express';

const { AUTHSOCKET_PROXY_SECRET: SECRET, AUTHSOCKET_API_KEY: API_KEY, GATEWAY_URL, PORT = '3000' } = process.env;
if (!SECRET) throw new Error('set AUTHSOCKET_PROXY_SECRET to the gateway’s --proxy-secret');

// The gateway signs every request: `authsocket-signature: t=<ms>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`.
function fromGateway(req) {
  const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(req.get('authsocket-signature') ?? '') ?? [];
  if (!t || Math.abs(Date.now() - Number(t)) > 5 * 60_000) return false;
  const expected = createHmac('sha256', SECRET).update(`${t}.`).update(req.body).digest();
  return timingSafeEqual(expected, Buffer.from(v1, 'hex'));
}

const app = express();
app.use(express.raw({ type: 'application/json', limit: '64kb' })); // the raw bytes: verify before parsing

app.post('/authsocket/:event', (req, res) => {
  if (!fromGateway(req)) return res.status(401).json({ error: 'not from the gateway' });
  const { event, identity, topic, method, data } = JSON.parse(req.body);
  const { user, connection } = identity;
  switch (event) {
    case 'connect':
    case 'refresh':
      if (user === 'mallory') return res.json({ error: { code: 4403, reason: 'banned' } });
      return res.json({ data: { greeting: `hello ${user}` }, topics: [`inbox:${user}`] });
    case 'subscribe':
      if (topic.startsWith('admin:') && user !== 'alice') return res.json({ error: { message: 'admins only' } });
      return res.json({});
    case 'publish':
      return res.json({ data: { text: String(data?.text ?? '').slice(0, 500), from: user } }); // never trust a client's `from`
    case 'rpc':
      if (method === 'time') return res.json({ result: { now: Date.now(), for: user } });
      if (method === 'later') {
        // Answer now, push the real result to this one connection when it is ready, through any gateway node.
        const done = { type: 'notifications/added', payload: { text: 'Your job is done', via: 'the backend, to this connection only', job: data ?? null } };
        setTimeout(() => sendTo(connection, done), 100);
        return res.json({ result: { queued: true } });
      }
      return res.json({ error: { code: 'not_found', message: `no method '${method}'` } });
    default: // disconnect: best effort, nothing to answer
      return res.json({});
  }
});

async function sendTo(connection, data) {
  if (!GATEWAY_URL || !API_KEY) return;
  await fetch(`${GATEWAY_URL}/api/connections/${connection}/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ data }),
  }).catch((error) => console.error('reply failed:', error.message));
}

// The test harness waits for this line.
app.listen(Number(PORT), '127.0.0.1', () => process.stdout.write(`backend on http://127.0.0.1:${PORT}\n`));
