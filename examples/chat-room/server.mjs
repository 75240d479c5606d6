// A chat room with presence and a private topic per user, on one gateway. The token decides:
// every user may read, write and see who is in `room:*`, and read only their own `user:<sub>:*`.
// Run: JWT_SECRET=<32+ bytes> PORT=8080 node server.mjs
// Then: POST /login {"user": "alice", "name": "Alice"} → {token} (a stand-in for your IdP), and
// open ws://localhost:8080/ws with the `authsocket.v1` subprotocol.
import http from 'node:http';
import { createGateway } from '@authsocket/server';
import { SignJWT } from 'jose';

const { JWT_SECRET: SECRET, PORT = '8080' } = process.env;
if (!SECRET || SECRET.length < 32) throw new Error('set JWT_SECRET to at least 32 characters');
const secret = new TextEncoder().encode(SECRET);
const jwt = { secret: SECRET, issuer: 'chat-example', audience: 'chat' };

const gateway = createGateway({
  jwt,
  path: '/ws',
  permissions: [
    { topics: 'room:*', allow: ['subscribe', 'publish', 'presence'] },
    { topics: 'user:{sub}:*', allow: ['subscribe'] }, // alice reads user:alice:inbox, never bob's
  ],
  presence: { topics: ['room:*'], infoClaim: 'name', maxMembers: 100, joinLeave: true },
});

// Your IdP in a few lines, for the example only: a 10-minute token carrying the display name.
async function login(req, res) {
  let body = '';
  for await (const chunk of req) body += chunk;
  const { user, name } = JSON.parse(body || '{}');
  if (typeof user !== 'string' || !/^\w{1,32}$/.test(user)) return reply(res, 400, { error: 'user must be 1-32 word characters' });
  const token = await new SignJWT({ name: typeof name === 'string' ? name.slice(0, 64) : user })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(user)
    .setIssuer(jwt.issuer)
    .setAudience(jwt.audience)
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(secret);
  reply(res, 200, { token });
}

function reply(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
}

const server = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/login') return void login(req, res).catch(() => reply(res, 400, { error: 'bad request' }));
  // Your backend's side (loopback only here; in your app, its own code calls gateway.publish): a
  // private message to one user, on every connection of theirs.
  if (req.method === 'POST' && req.url?.startsWith('/notify/')) {
    const user = decodeURIComponent(req.url.slice('/notify/'.length));
    return void gateway.publish(`user:${user}:inbox`, { text: 'you have mail' }).then((delivered) => reply(res, 200, { delivered }));
  }
  gateway.handleRequest(req, res);
});
gateway.attach(server);
server.listen(Number(PORT), '127.0.0.1', () => process.stdout.write(`chat room on http://127.0.0.1:${server.address().port}\n`));
