// One authsocket gateway node on Redis. Run several behind a load balancer (no sticky sessions):
//   AUTHSOCKET_REDIS_URL=redis://127.0.0.1:6390 AUTHSOCKET_JWT_SECRET=... PORT=8081 node packages/redis/examples/node.mjs
// Build first: `npx tsc -b packages/redis`.
import http from 'node:http';
import { createRedisEngine } from '@authsocket/redis';
import { createGateway } from '@authsocket/server';

const url = process.env.AUTHSOCKET_REDIS_URL ?? 'redis://127.0.0.1:6390';
const secret = process.env.AUTHSOCKET_JWT_SECRET;
if (!secret) {
  console.error('set AUTHSOCKET_JWT_SECRET (the same on every node)');
  process.exit(1);
}
const port = Number(process.env.PORT ?? 8081);

const engine = createRedisEngine(url);
const gateway = createGateway({
  jwt: { secret },
  broker: engine.broker,
  ticketStore: engine.ticketStore,
  revocationStore: engine.revocationStore,
  onMessage: ({ connection, user, data }) => {
    // Echo to every connection of the user, on whichever node it is.
    void gateway.sendToUser(user, { echo: data, via: port, from: connection.id });
  },
});

const server = http.createServer((req, res) => {
  if (req.url === '/redis/healthz') {
    // The gateway's own /healthz does not know about Redis yet: this one does.
    res.writeHead(engine.status === 'ready' ? 200 : 503, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ redis: engine.status }));
    return;
  }
  gateway.handleRequest(req, res);
});
gateway.attach(server);
engine.broker.on('status', (status, previous) => console.error(`redis: ${previous} -> ${status}`));

server.listen(port, () => console.error(`authsocket node on http://localhost:${port} (redis ${engine.status})`));

const shutdown = () =>
  void gateway
    .close()
    .then(() => engine.close())
    .then(() => server.close(() => process.exit(0)));
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
