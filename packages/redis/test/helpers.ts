import net from 'node:net';

export { freePorts, RedisServer } from './redis-server.js';
export { RedisCluster, SentinelSet } from './redis-topologies.js';

/**
 * A TCP proxy in front of Redis whose link can be cut (connections reset, new ones refused), to
 * partition one node from Redis, or black-holed (connections stay open, accepted, nothing passes
 * either way), as a silent network partition looks to both ends.
 */
export class TcpProxy {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  #cut = false;
  #blackholed = false;

  private constructor(targetPort: number) {
    this.#server = net.createServer((client) => {
      if (this.#cut) return client.destroy();
      const upstream = net.connect(targetPort, '127.0.0.1');
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket);
        socket.on('error', () => {});
        socket.on('close', () => {
          this.#sockets.delete(socket);
          client.destroy();
          upstream.destroy();
        });
        // Not read while black-holed: the bytes wait in kernel buffers, and no reply comes back.
        if (this.#blackholed) socket.pause();
      }
      client.pipe(upstream).pipe(client);
    });
  }

  /** Stops passing bytes on every connection, open and new, until `heal()`; nothing is closed. */
  blackhole(): void {
    this.#blackholed = true;
    for (const socket of this.#sockets) socket.pause();
  }

  static async start(targetPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(targetPort);
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `redis://127.0.0.1:${(this.#server.address() as net.AddressInfo).port}`;
  }

  /** Drops every proxied connection and refuses new ones until `heal()`. */
  cut(): void {
    this.#cut = true;
    for (const socket of this.#sockets) socket.destroy();
  }

  heal(): void {
    this.#cut = false;
    this.#blackholed = false;
    for (const socket of this.#sockets) socket.resume();
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
