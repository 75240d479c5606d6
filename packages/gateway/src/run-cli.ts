import { type Environment, InvalidOptionError, loadConfig, printableConfig } from './config.js';
import { serveHelp, USAGE } from './help.js';
import { OPTIONS } from './options.js';
import { checkGatewayConfig, type RunningGateway, startGateway } from './start.js';

export interface CliIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
  /** Where SIGINT/SIGTERM arrive. Default: `process`. */
  readonly signals: Pick<NodeJS.Process, 'once' | 'off'>;
}

const processIo: CliIo = { stdout: process.stdout, stderr: process.stderr, signals: process };

/** Exit codes: 0 done, 1 failed to start or to stop, 2 bad usage or configuration. */
export async function runCli(args: readonly string[], env: Environment, io: CliIo = processIo): Promise<number> {
  const [command, ...rest] = args;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (command !== 'serve' && command !== 'check-config') {
    io.stderr.write(`authsocket: unknown command ${JSON.stringify(command)}\n${USAGE}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(serveHelp());
    return 0;
  }
  if (command === 'check-config') return checkConfig(rest, env, io);

  let running: RunningGateway;
  let shutdownTimeoutMs: number;
  try {
    const { config, warnings } = loadConfig(rest, env);
    shutdownTimeoutMs = config.shutdownTimeoutMs;
    running = await startGateway(config, { warnings, processMetrics: true });
  } catch (error) {
    io.stderr.write(`authsocket: ${error instanceof Error ? error.message : String(error)}\n`);
    return error instanceof InvalidOptionError ? 2 : 1;
  }
  io.stderr.write(banner(running));
  return untilSignal(running, io, shutdownTimeoutMs);
}

/**
 * `authsocket check-config`: the configuration `serve` would run with, validated, printed as JSON
 * with secrets masked and each value's source. 0 valid, 2 invalid (the message `serve` would print).
 */
async function checkConfig(args: readonly string[], env: Environment, io: CliIo): Promise<number> {
  try {
    const { config, sources, warnings } = loadConfig(args, env);
    await checkGatewayConfig(config);
    const printable = printableConfig(config);
    // One line per option: the output is read by people as much as by tools.
    const options = OPTIONS.map(
      (spec) => `    ${JSON.stringify(spec.fileKey)}: ${JSON.stringify({ value: printable[spec.key] ?? null, source: sources[spec.key] })}`,
    );
    const head = `  "valid": true,\n  "configFile": ${JSON.stringify(config.configFile ?? null)},\n  "warnings": ${JSON.stringify(warnings)},`;
    io.stdout.write(`{\n${head}\n  "options": {\n${options.join(',\n')}\n  }\n}\n`);
    return 0;
  } catch (error) {
    io.stderr.write(`authsocket: ${error instanceof Error ? error.message : String(error)}\n`);
    return error instanceof InvalidOptionError ? 2 : 1;
  }
}

/** For the person at the terminal, on stderr: stdout carries only JSON log lines. */
function banner({ url, wsUrl, generatedApiKey }: RunningGateway): string {
  const lines = [`authsocket gateway on ${url} (WebSocket ${wsUrl})`];
  if (generatedApiKey !== undefined) {
    lines.push(
      `demo API key for this run: ${generatedApiKey}`,
      `  try: curl -H 'Authorization: Bearer ${generatedApiKey}' ${url}/api/users/alice/connections`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Resolves with the exit code once a signal has closed the gateway (a second signal: at once). */
function untilSignal(running: RunningGateway, io: CliIo, shutdownTimeoutMs: number): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = () => {
      if (stopping) return resolve(1);
      stopping = true;
      // A shutdown that hangs (a peer, a backend) must not keep the process past its deadline.
      const deadline = setTimeout(() => {
        io.stderr.write(`authsocket: shutdown did not finish within ${shutdownTimeoutMs} ms; exiting\n`);
        resolve(1);
      }, shutdownTimeoutMs);
      deadline.unref();
      running.shutdown().then(
        () => {
          clearTimeout(deadline);
          io.signals.off('SIGINT', onSignal);
          io.signals.off('SIGTERM', onSignal);
          resolve(0);
        },
        (error: unknown) => {
          clearTimeout(deadline);
          io.stderr.write(`authsocket: shutdown failed: ${String(error)}\n`);
          resolve(1);
        },
      );
    };
    io.signals.once('SIGINT', onSignal);
    io.signals.once('SIGTERM', onSignal);
  });
}
