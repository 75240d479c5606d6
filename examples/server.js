// A runnable authsocket server: tickets, first-message auth, echo, in-band reauth before expiry.
// Start with `npm start`, then get a token with `curl -X POST localhost:8080/demo/token?user=alice`.
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { createGateway } from '@authsocket/server';

const secret = process.env.AUTHSOCKET_JWT_SECRET ?? randomBytes(32).toString('base64url');
const port = Number(process.env.PORT ?? 8080);

const gateway = createGateway({
  jwt: { secret },
  onMessage: ({ connection, data }) => {
    connection.send({ echo: data });
  },
});

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (req.method === 'POST' && url.pathname === '/demo/token') {
    // Demo identity provider: hands out 2-minute tokens so in-band refresh is visible.
    const user = url.searchParams.get('user') ?? 'alice';
    void new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(user)
      .setIssuedAt()
      .setExpirationTime('2m')
      .sign(new TextEncoder().encode(secret))
      .then((token) => {
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify({ token }));
      });
    return;
  }
  gateway.handleRequest(req, res);
});
gateway.attach(server);
server.listen(port, () => {
  console.log(`authsocket example on http://localhost:${port}`);
  console.log(`  token:  curl -X POST 'http://localhost:${port}/demo/token?user=alice'`);
  console.log(`  ticket: curl -X POST -H "Authorization: Bearer <token>" http://localhost:${port}/auth/ticket`);
  if (!process.env.AUTHSOCKET_JWT_SECRET) console.log('  (no AUTHSOCKET_JWT_SECRET set: generated a random one)');
});

const shutdown = () => void gateway.close().then(() => server.close(() => process.exit(0)));
process.on("SIGINT", shutdown);
process.on('SIGTERM', shutdown);
