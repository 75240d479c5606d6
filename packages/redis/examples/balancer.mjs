// A round-robin TCP load balancer for trying several nodes locally: each new connection (HTTP request
// or WebSocket) goes to the next node, no stickiness. Not for production: use nginx, HAProxy or your
// cloud's balancer there.
//   BACKENDS=8081,8082,8083 PORT=8080 node packages/redis/examples/balancer.mjs
import net from 'node:net';

const backends = (process.env.BACKENDS ?? '8081,8082,8083').split(',').map(Number);
const port = Number(process.env.PORT ?? 8080);
let next = 0;

const server = net.createServer((client) => {
  const backend = backends[next++ % backends.length];
  const upstream = net.connect(backend, '127.0.0.1');
  client.pipe(upstream).pipe(client);
  const end = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', end);
  upstream.on('error', end);
  client.on('close', end);
  upstream.on('close', end);
});
server.listen(port, '127.0.0.1', () => console.error(`balancing :${port} over ${backends.join(', ')}`));
process.on('SIGINT', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
