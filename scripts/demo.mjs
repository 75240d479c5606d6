// `npm start`: the gateway in demo mode, with examples/proxy-backend behind its HTTP event proxy
// (connect and rpc), each a process of its own. PORT (default 8080) is the gateway's; the backend
// takes PORT+1 (BACKEND_PORT). Ctrl-C stops both; either one exiting stops the other.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const port = Number(process.env.PORT ?? 8080);
const backendPort = Number(process.env.BACKEND_PORT ?? port + 1);
const backendUrl = `http://127.0.0.1:${backendPort}/authsocket`;
// One secret and one API key for both: the backend verifies the proxy's signature, and replies through the API.
const secret = process.env.AUTHSOCKET_PROXY_SECRET ?? randomBytes(32).toString('hex');
const generatedKey = process.env.AUTHSOCKET_API_KEY === undefined;
const apiKey = process.env.AUTHSOCKET_API_KEY ?? randomBytes(24).toString('base64url');
const env = { ...process.env, AUTHSOCKET_PROXY_SECRET: secret, AUTHSOCKET_API_KEY: apiKey };

const backend = spawn(process.execPath, ['examples/proxy-backend/server.mjs'], {
  cwd: root,
  env: { ...env, PORT: String(backendPort), GATEWAY_URL: `http://127.0.0.1:${port}` },
  stdio: ['ignore', 'inherit', 'inherit'],
});
const gateway = spawn(
  process.execPath,
  ['packages/gateway/dist/cli.js', 'serve', '--demo', '--proxy-connect-url', `${backendUrl}/connect`, '--proxy-rpc-url', `${backendUrl}/rpc`, ...process.argv.slice(2)],
  { cwd: root, env: { ...env, PORT: String(port) }, stdio: 'inherit' },
);
if (generatedKey) process.stderr.write(`demo: API key for this run (backend and curl): ${apiKey}\n`);

const children = [backend, gateway];
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => children.forEach((child) => child.kill(signal)));
for (const child of children) {
  child.on('exit', (code, signal) => {
    for (const other of children) if (other !== child && other.exitCode === null) other.kill('SIGTERM');
    process.exitCode = code ?? (signal ? 1 : 0);
  });
}
