import net from 'node:net';

export { type EngineNode, EngineNodes, FAST_LIVENESS } from './engine-nodes.js';
export { freePorts, RedisServer } from './redis-server.js';
export { RedisCluster, SentinelSet } from './redis-topologies.js';

/**
 * A TCP proxy in front of Redis whose link can be cut (connections reset, new ones refused), to
 * partition one node from Redis, or black-holed: connections stay open and new ones are accepted,
 * but no byte passes either way until `heal()`, as a silent partition looks to both ends. What was
 * sent meanwhile is delivered on heal, as TCP's retransmits would.
 */
export class TcpProxy {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  /** Bytes held back while black-holed, per destination socket, in order. */
  readonly #held = new Map<net.Socket, Buffer[]>();
  #cut = false;
  #blackholed = false;

  private constructor(targetPort: number) {
    this.#server = net.createServer((client) => {
      if (this.#cut) return client.destroy();
      const upstream = net.connect(targetPort, '127.0.0.1');
      for (const [from, to] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        this.#sockets.add(from);
        from.on('error', () => {});
        from.on('close', () => {
          this.#sockets.delete(from);
          this.#held.delete(to);
          client.destroy();
          upstream.destroy();
        });
        from.on('data', (chunk: Buffer) => {
          if (!this.#blackholed) return void to.write(chunk);
          const held = this.#held.get(to) ?? [];
          held.push(chunk);
          this.#held.set(to, held);
        });
      }
    });
  }

  static async start(targetPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(targetPort);
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `redis://127.0.0.1:${(this.#server.address() as net.AddressInfo).port}`;
  }

  /** Stops passing bytes on every connection, open and new, until `heal()`; nothing is closed. */
  blackhole(): void {
    this.#blackholed = true;
  }

  /** Drops every proxied connection and refuses new ones until `heal()`. */
  cut(): void {
    this.#cut = true;
    for (const socket of this.#sockets) socket.destroy();
  }

  heal(): void {
    this.#cut = false;
    this.#blackholed = false;
    for (const [to, chunks] of this.#held) if (!to.destroyed) for (const chunk of chunks) to.write(chunk);
    this.#held.clear();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function until<T>(check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 5_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
