/**
 * The rpc backend of the `authsocket-proxy` target, in its own process: a plain node:http server
 * answering the HTTP event proxy's signed `POST /rpc` with `{"result": {"echo": data}}`, after
 * checking the `authsocket-signature` over the raw body as a real backend must. Like a server
 * process it reports `{ready, port, controlPort}` over IPC and answers `stats` on a control listener
 * of its own, so its CPU can be added to the gateway's.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exitWithRunner, processStats, statsListener } from './process-stats.js';
import { SIGNATURE_HEADER, verifySignature } from '@authsocket/proxy';
import { HOST, PROXY_SECRET, type ServerStats } from './common.js';

let requests = 0;
let refused = 0;
/** Sockets the proxy opened to this backend so far: a working keep-alive pool keeps this near its size. */
let sockets = 0;

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const server = http.createServer((req, res) => {
  if (req.method !== 'POST' || req.url !== '/rpc') return void res.writeHead(404).end();
  readBody(req).then(
    (body) => {
      requests++;
      const check = verifySignature(PROXY_SECRET, req.headers[SIGNATURE_HEADER], body);
      if (!check.ok) {
        refused++;
        return void res.writeHead(401).end(check.reason);
      }
      const envelope = JSON.parse(body.toString()) as { event: string; method: string; data: unknown };
      const answer = JSON.stringify({ result: { echo: envelope.data } });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) }).end(answer);
    },
    () => res.destroy(),
  );
});
server.on('connection', () => sockets++);

function stats(): ServerStats & { requests: number; refused: number; sockets: number } {
  return { ...processStats(), requests, refused, sockets };
}

const control = statsListener(stats);
exitWithRunner();

server.listen({ host: HOST, port: 0, backlog: 4096 }, () => {
  control.listen({ host: HOST, port: 0 }, () => {
    process.send?.({
      ready: true,
      port: (server.address() as AddressInfo).port,
      controlPort: (control.address() as AddressInfo).port,
    });
  });
});
