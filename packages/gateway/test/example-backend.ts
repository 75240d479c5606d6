import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { cleanEnv } from './helpers.js';

const SERVER = fileURLToPath(new URL('../../../examples/proxy-backend/server.mjs', import.meta.url));

/** examples/proxy-backend as a process of its own on 127.0.0.1:`port`, replying through `gatewayUrl`'s API. */
export class ExampleBackend {
  readonly url: string;
  readonly #child: ChildProcess;

  private constructor(port: number, child: ChildProcess) {
    this.url = `http://127.0.0.1:${port}`;
    this.#child = child;
  }

  static async start(port: number, { secret, apiKey, gatewayUrl }: { secret: string; apiKey: string; gatewayUrl: string }): Promise<ExampleBackend> {
    const child = spawn(process.execPath, [SERVER], {
      env: cleanEnv({ AUTHSOCKET_PROXY_SECRET: secret, AUTHSOCKET_API_KEY: apiKey, GATEWAY_URL: gatewayUrl, PORT: String(port) }),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const [line] = (await Promise.race([once(child.stdout!, 'data'), once(child, 'exit').then(() => ['exited'])])) as [Buffer | string];
    if (!String(line).includes('backend on')) {
      child.kill('SIGKILL');
      throw new Error(`the example backend did not start: ${String(line)}`);
    }
    return new ExampleBackend(port, child);
  }

  /** `--proxy-<event>-url` flags pointing at this backend, for `events`. */
  flags(events: readonly string[]): string[] {
    return events.flatMap((event) => [`--proxy-${event}-url`, `${this.url}/authsocket/${event}`]);
  }

  /** kill -9, and waits until it is gone. */
  async kill(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = once(this.#child, 'exit');
    this.#child.kill('SIGKILL');
    await exited;
  }
}
