import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Client } from './errors.js';
import { slotOf } from './keys.js';
import type { SubscriberOptions } from './subscriber.js';
import type { ParsedTarget } from './target.js';

/** The command connection and how the subscriber finds the nodes that serve the channels. */
export interface Connections {
  readonly command: Client;
  readonly commandNodes: () => readonly Redis[];
  readonly subscriber: Pick<SubscriberOptions, 'layout' | 'connect' | 'topologyChanged'>;
}

/**
 * The command connection for `target`, the nodes the liveness PING watches on that side, and how
 * the subscriber finds the node serving each channel: the one server, the master Sentinel names, or
 * on Redis Cluster the master that owns the channel's slot (from the Cluster's slot map).
 */
export function connect(
  target: ParsedTarget,
  options: RedisOptions,
  channels: readonly string[],
  reconnectDelay: (attempt: number) => number,
): Connections {
  if (target.kind === 'standalone') {
    const command = new Redis(target.url, options);
    return {
      command,
      commandNodes: () => [command],
      subscriber: { layout: () => new Map([['redis', channels]]), connect: () => new Redis(target.url, options) },
    };
  }
  if (target.kind === 'sentinel') {
    const sentinel: RedisOptions = {
      ...options,
      sentinels: target.sentinels.map(({ host, port }) => ({ host, port })),
      name: target.name,
      // Not `failoverDetector`: its disconnect can race a reconnect and leave the connection ended
      // for good (ioredis 6.0). A killed master drops the connections anyway, and a demoted one has
      // its clients killed by Sentinel, so they reconnect and ask the sentinels again.
      sentinelRetryStrategy: reconnectDelay,
    };
    const command = new Redis(sentinel);
    return {
      command,
      commandNodes: () => [command],
      subscriber: { layout: () => new Map([[target.name, channels]]), connect: () => new Redis(sentinel) },
    };
  }
  const { retryStrategy, ...nodeOptions } = options;
  const command = new Cluster(
    target.nodes.map(({ host, port }) => ({ host, port })),
    {
      redisOptions: nodeOptions,
      clusterRetryStrategy: (attempt: number) => retryStrategy?.(attempt) ?? null,
      enableOfflineQueue: options.enableOfflineQueue,
      scaleReads: 'master',
      // Notices a failover or resharding within a second even when no command hits MOVED.
      slotsRefreshInterval: 1_000,
      slotsRefreshTimeout: options.connectTimeout,
    },
  );
  return {
    command,
    commandNodes: () => command.nodes('master'),
    subscriber: {
      // Each channel on the master that owns its slot; unknown until the Cluster read its slot map.
      layout: () => {
        const layout = new Map<string, string[]>();
        for (const channel of channels) {
          const node = command.slots[slotOf(channel)]?.[0];
          if (node !== undefined) layout.set(node, [...(layout.get(node) ?? []), channel]);
        }
        return layout;
      },
      connect: (node: string) => {
        const colon = node.lastIndexOf(':');
        return new Redis({ ...options, host: node.slice(0, colon), port: Number(node.slice(colon + 1)) });
      },
      topologyChanged: () => command.refreshSlotsCache(),
    },
  };
}
