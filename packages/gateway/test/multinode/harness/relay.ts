import net from 'node:net';

/**
 * What the relay does with traffic: `forward` it; `refuse` new connections (reset at once, as a
 * closed port or a dropped route does); `blackhole`: accept and keep every socket open but forward
 * nothing (a frozen peer or a silent partition: bytes wait, as TCP retransmission would deliver them
 * after the heal).
 */
export type RelayMode = 'forward' | 'refuse' | 'blackhole';

interface Pair {
  readonly downstream: net.Socket;
  readonly upstream: net.Socket;
  /** Bytes held while black-holed, per direction, delivered in order on `restore()`. */
  readonly held: { toUpstream: Buffer[]; toDownstream: Buffer[] };
}

/**
 * A TCP relay on a loopback port (or any local address) in front of one target: the link between a
 * gateway node and Redis, or between a client and a node, that a test can cut (RST), refuse and
 * black-hole by real means, with real sockets.
 */
export class TcpRelay {
  readonly host: string;
  readonly port: number;
  readonly #server: net.Server;
  readonly #pairs = new Set<Pair>();
  readonly #target: { host: string; port: number };
  #mode: RelayMode = 'forward';
  /** Connections accepted so far: a reconnecting peer shows up here. */
  accepted = 0;

  private constructor(server: net.Server, host: string, port: number, target: { host: string; port: number }) {
    this.#server = server;
    this.host = host;
    this.port = port;
    this.#target = target;
  }

  static async start(target: { host: string; port: number }, host = '127.0.0.1'): Promise<TcpRelay> {
    const server = net.createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => resolve());
    });
    const relay = new TcpRelay(server, host, (server.address() as net.AddressInfo).port, target);
    server.on('connection', (socket) => relay.accept(socket));
    return relay;
  }

  get mode(): RelayMode {
    return this.#mode;
  }

  /** Open connection pairs right now. */
  get open(): number {
    return this.#pairs.size;
  }

  /** `redis://host:port` (or another scheme, and a path) of the relay's listening end. */
  url(scheme = 'redis', path = ''): string {
    return `${scheme}://${this.host}:${this.port}${path}`;
  }

  private accept(downstream: net.Socket): void {
    this.accepted++;
    if (this.#mode === 'refuse') {
      downstream.on('error', () => {});
      downstream.resetAndDestroy();
      return;
    }
    const upstream = net.connect({ ...this.#target, noDelay: true });
    const pair: Pair = { downstream, upstream, held: { toUpstream: [], toDownstream: [] } };
    this.#pairs.add(pair);
    const drop = () => {
      if (!this.#pairs.delete(pair)) return;
      // A reset on one side is passed on as a reset, so the other end sees the same abrupt loss.
      downstream.resetAndDestroy();
      upstream.resetAndDestroy();
    };
    for (const socket of [downstream, upstream]) {
      socket.on('error', drop);
      socket.on('close', drop);
    }
    downstream.on('data', (chunk: Buffer) => this.forward(pair, chunk, 'toUpstream'));
    upstream.on('data', (chunk: Buffer) => this.forward(pair, chunk, 'toDownstream'));
  }

  private forward(pair: Pair, chunk: Buffer, direction: 'toUpstream' | 'toDownstream'): void {
    if (this.#mode === 'blackhole' || pair.held[direction].length > 0) {
      pair.held[direction].push(chunk);
      return;
    }
    (direction === 'toUpstream' ? pair.upstream : pair.downstream).write(chunk);
  }

  /** Resets (RST) every open connection at once; new ones are forwarded as before. */
  cut(): void {
    for (const pair of [...this.#pairs]) {
      this.#pairs.delete(pair);
      pair.downstream.resetAndDestroy();
      pair.upstream.resetAndDestroy();
    }
  }

  /** Cuts every connection and resets every new one until `restore()`. */
  refuse(): void {
    this.#mode = 'refuse';
    this.cut();
  }

  /** Stops forwarding in both directions; every socket stays open, new ones are accepted and held. */
  blackhole(): void {
    this.#mode = 'blackhole';
  }

  /** Forwards again, first what was held while black-holed. */
  restore(): void {
    this.#mode = 'forward';
    for (const pair of this.#pairs) {
      for (const chunk of pair.held.toUpstream.splice(0)) pair.upstream.write(chunk);
      for (const chunk of pair.held.toDownstream.splice(0)) pair.downstream.write(chunk);
    }
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
