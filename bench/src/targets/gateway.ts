import { openSync, writeSync } from 'node:fs';
import { loadConfig, startGateway } from '@authsocket/gateway';
import { AUDIENCE, GATEWAY_API_KEY, HOST, ISSUER, SECRET } from '../common.js';
import type { TargetServer } from './types.js';

/**
 * The standalone gateway as `authsocket serve` runs it (`startGateway` from `loadConfig`, the
 * Express app with its request log, metrics and `/api`), in memory, logging at `info` as in
 * production. The JSON lines are written synchronously to /dev/null, as pino writes them to stdout:
 * their serialisation and write are paid, the terminal is not flooded. It listens itself, so the
 * bench's server process uses its port as is. Pushes come from the load generator over HTTP.
 */
export async function startGatewayTarget(): Promise<TargetServer> {
  const fd = openSync('/dev/null', 'w');
  const { config, warnings } = loadConfig(
    [
      '--port', '0',
      '--host', HOST,
      '--jwt-secret', SECRET,
      '--issuer', ISSUER,
      '--audience', AUDIENCE,
      '--api-key', GATEWAY_API_KEY,
      '--subscribe-topics', '*',
      '--upgrade-rate-limit', 'off',
      // Where every bench client connects.
      '--ws-path', '/',
      '--log-level', 'info',
    ],
    {},
  );
  const running = await startGateway(config, { warnings, logDestination: { write: (line: string) => void writeSync(fd, line) } });
  const port = Number(new URL(running.url).port);
  const unsupported = () => {
    throw new Error('the gateway target is driven over its HTTP API');
  };
  return {
    port,
    broadcast: unsupported,
    push: unsupported,
    // The load generator counts what its subscribers received.
    connections: () => 0,
    reauths: () => 0,
  };
}
