import { createHash } from 'node:crypto';
import type { Audience } from '@authsocket/server';
import { ConfigError } from '@authsocket/server';

/** FNV-1a over the UTF-8 bytes: a stable, cheap spread of stream names over shards. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/**
 * Every Redis key and channel the engine uses, in one place. A stream's keys and the channel its
 * publications travel on share one hash tag (`{<shard>}`), so the publish script touches one slot
 * and stays valid on Redis Cluster.
 *
 * | name | type | holds |
 * |---|---|---|
 * | `<prefix>t:<sha256 of ticket>` | string | a ticket record (JSON), `PX` = ticket TTL |
 * | `<prefix>r:<user>` | string | when `user` was last revoked (ms), `PX` = revocation TTL |
 * | `<prefix>{<shard>}:m:<stream>` | hash | the stream's `epoch` and last `offset`, `PX` = stream TTL |
 * | `<prefix>{<shard>}:h:<stream>` | stream | the history, entry id `<offset>-0`, fields `t` (ms) and `p` (payload) |
 * | `<prefix>{<shard>}:i:<sha256 of audience and key>` | string | an idempotency key seen, `PX` = idempotency window |
 * | `<prefix>{<shard>}:p` | shard channel | publications of the shard's streams (and broadcasts on shard 0) |
 * | `<prefix>control` | shard channel | control messages (revocations) |
 * | `<prefix>leases` | sorted set | node leases: member `<node>@<random>`, score its deadline (ms, Redis's clock); 0 = retired |
 * | `<prefix>cu:<user>` | hash | the user's connections: connection id → `<lease>\n<record JSON>` |
 * | `<prefix>ci:<connection id>` | string | the same `<lease>\n<record JSON>`, to find a connection by id |
 * | `<prefix>cl:<lease>` | hash | what a lease wrote to the registry: connection id → user, for its sweep and counts |
 * | `<prefix>pt:<topic>` | hash | the topic's presence: connection id → `<lease>\n<member JSON>` |
 * | `<prefix>pl:<lease>` | hash | what a lease wrote to presence: `<connection id>\n<topic>` → `1`, for its sweep |
 *
 * The registry and presence scripts each touch one key (reads filter by the live leases, read
 * first), so they need no hash tag to stay valid on Redis Cluster.
 */
export class Keys {
  readonly prefix: string;
  readonly shards: number;
  readonly control: string;
  readonly channels: readonly string[];

  constructor(prefix: string, shards: number) {
    if (/[{}]/.test(prefix)) throw new ConfigError('keyPrefix', `must not contain '{' or '}', got '${prefix}'`);
    if (!Number.isSafeInteger(shards) || shards < 1 || shards > 1024) {
      throw new ConfigError('shards', `expected an integer from 1 to 1024, got ${shards}`);
    }
    this.prefix = prefix;
    this.shards = shards;
    this.control = `${prefix}control`;
    this.channels = Array.from({ length: shards }, (_, shard) => this.channel(shard));
  }

  ticket(hash: string): string {
    return `${this.prefix}t:${hash}`;
  }

  revoked(user: string): string {
    return `${this.prefix}r:${user}`;
  }

  /** Every node's lease and its deadline. */
  get leases(): string {
    return `${this.prefix}leases`;
  }

  userConnections(user: string): string {
    return `${this.prefix}cu:${user}`;
  }

  connection(id: string): string {
    return `${this.prefix}ci:${id}`;
  }

  leaseConnections(lease: string): string {
    return `${this.prefix}cl:${lease}`;
  }

  presence(topic: string): string {
    return `${this.prefix}pt:${topic}`;
  }

  leasePresence(lease: string): string {
    return `${this.prefix}pl:${lease}`;
  }

  /** The shard a stream lives on; broadcasts (no stream) go to shard 0. */
  shardOf(stream: string | undefined): number {
    return stream === undefined ? 0 : fnv1a(stream) % this.shards;
  }

  channel(shard: number): string {
    return `${this.prefix}{${shard}}:p`;
  }

  /**
   * Where a publication's idempotency key is remembered: in the slot of the channel it goes out on
   * (the stream's shard, or shard 0 without a stream), so the publish script stays in one slot. One
   * per audience: the same key sent to two users is two publications.
   */
  idempotency(to: Audience, stream: string | undefined, key: string): string {
    const audience = 'user' in to ? `u:${to.user}` : 'topic' in to ? `t:${to.topic}` : 'connection' in to ? `c:${to.connection}` : '*';
    const hash = createHash('sha256').update(`${audience}\n${key}`).digest('base64url');
    return `${this.prefix}{${this.shardOf(stream)}}:i:${hash}`;
  }

  /** The stream's meta hash and history stream (same slot). */
  stream(stream: string): { meta: string; history: string; channel: string } {
    const shard = this.shardOf(stream);
    const tag = `${this.prefix}{${shard}}`;
    return { meta: `${tag}:m:${stream}`, history: `${tag}:h:${stream}`, channel: this.channel(shard) };
  }
}

/** The Redis Cluster hash slot of a key or shard channel: CRC16 (XMODEM) of its hash tag, mod 16384. */
export function slotOf(key: string): number {
  const open = key.indexOf('{');
  const close = open < 0 ? -1 : key.indexOf('}', open + 1);
  const tagged = close > open + 1 ? key.slice(open + 1, close) : key;
  let crc = 0;
  for (const byte of Buffer.from(tagged)) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16_384;
}
