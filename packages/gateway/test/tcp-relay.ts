import net from 'node:net';

interface Pair {
  readonly downstream: net.Socket;
  readonly upstream: net.Socket;
}

/**
 * A TCP relay on a free loopback port in front of one target (a node's link to Redis) that a test
 * can freeze: every connection, new ones too, stays open but nothing is forwarded, as with a frozen
 * peer or a silent partition. On thaw the held bytes are delivered in order, as TCP retransmission
 * would after the heal.
 */
export class TcpRelay {
  readonly port: number;
  readonly #server: net.Server;
  readonly #pairs = new Set<Pair>();
  readonly #held: (() => void)[] = [];
  #frozen = false;
  /** The client-side sockets open when the relay was last frozen. */
  #openAtFreeze: net.Socket[] = [];

  private constructor(server: net.Server, target: { host: string; port: number }) {
    this.#server = server;
    this.port = (server.address() as net.AddressInfo).port;
    server.on('connection', (downstream) => this.#accept(downstream, target));
  }

  static async start(target: { host: string; port: number }): Promise<TcpRelay> {
    const server = net.createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return new TcpRelay(server, target);
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  freeze(): void {
    this.#frozen = true;
    this.#openAtFreeze = [...this.#pairs].map((pair) => pair.downstream).filter((socket) => !socket.destroyed);
  }

  /** Whether the client closed every connection it had through the relay when it froze (its liveness gave up on them). */
  get frozenLinksDropped(): boolean {
    return this.#openAtFreeze.every((socket) => socket.destroyed);
  }

  thaw(): void {
    this.#frozen = false;
    for (const send of this.#held.splice(0)) send();
  }

  #accept(downstream: net.Socket, target: { host: string; port: number }): void {
    const upstream = net.connect({ ...target, noDelay: true });
    const pair = { downstream, upstream };
    this.#pairs.add(pair);
    // By hand, not pipe(): pipe() resumes a paused socket on drain, so it could not hold bytes.
    const forward = (from: net.Socket, to: net.Socket) =>
      from.on('data', (chunk: Buffer) => {
        const send = () => {
          if (!to.destroyed) to.write(chunk);
        };
        if (this.#frozen) this.#held.push(send);
        else send();
      });
    forward(downstream, upstream);
    forward(upstream, downstream);
    // A close is passed on in order with the bytes: while frozen it waits too.
    const drop = () => {
      const close = () => {
        if (!this.#pairs.delete(pair)) return;
        downstream.destroy();
        upstream.destroy();
      };
      if (this.#frozen) this.#held.push(close);
      else close();
    };
    for (const socket of [downstream, upstream]) {
      socket.on('error', drop);
      socket.on('close', drop);
    }
  }

  async stop(): Promise<void> {
    for (const { downstream, upstream } of this.#pairs) {
      downstream.destroy();
      upstream.destroy();
    }
    this.#pairs.clear();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
