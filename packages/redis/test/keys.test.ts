import { describe, expect, it } from 'vitest';
import { Keys } from '../src/index.js';
import { slotOf } from '../src/keys.js';

/** The hash tag Redis Cluster hashes: the text between the first `{` and the next `}`. */
function hashTag(key: string): string {
  const open = key.indexOf('{');
  const close = key.indexOf('}', open + 1);
  return open >= 0 && close > open + 1 ? key.slice(open + 1, close) : key;
}

describe('Keys', () => {
  it('puts a stream’s meta, history and channel in one slot, whatever the stream is called', () => {
    const keys = new Keys('authsocket:', 16);
    for (const stream of ['user:alice', 'topic:room:{lobby}', 'user:}{', 'topic:ünï', `user:${'x'.repeat(300)}`]) {
      const { meta, history, channel } = keys.stream(stream);
      expect(new Set([hashTag(meta), hashTag(history), hashTag(channel)]).size).toBe(1);
      expect(meta).toContain(stream);
      expect(history).toContain(stream);
    }
  });

  it('spreads streams over every shard, stably', () => {
    const keys = new Keys('authsocket:', 16);
    const counts = new Array<number>(16).fill(0);
    for (let i = 0; i < 1_600; i++) counts[keys.shardOf(`user:${i}`)]! += 1;
    expect(Math.min(...counts)).toBeGreaterThan(50);
    expect(keys.shardOf('user:alice')).toBe(new Keys('other:', 16).shardOf('user:alice'));
    expect(keys.shardOf(undefined)).toBe(0);
    expect(keys.channels).toHaveLength(16);
  });

  it('names tickets by hash and revocations by user under the prefix', () => {
    const keys = new Keys('app:', 4);
    expect(keys.ticket('abc')).toBe('app:t:abc');
    expect(keys.revoked('bob')).toBe('app:r:bob');
    expect(keys.control).toBe('app:control');
  });

  it('keeps an idempotency key in the slot of the channel its publication goes out on, one per audience', () => {
    const keys = new Keys('authsocket:', 16);
    const { channel } = keys.stream('user:alice');
    const key = keys.idempotency({ user: 'alice' }, 'user:alice', 'order-1');
    expect(hashTag(key)).toBe(hashTag(channel));
    expect(hashTag(keys.idempotency({ everyone: true }, undefined, 'k'))).toBe(hashTag(keys.channel(0)));
    expect(key).not.toContain('order-1');
    expect(keys.idempotency({ user: 'bob' }, 'user:alice', 'order-1')).not.toBe(key);
    expect(keys.idempotency({ topic: 'alice' }, 'user:alice', 'order-1')).not.toBe(key);
  });

  it('computes Redis Cluster slots as CLUSTER KEYSLOT does (CRC16 of the hash tag)', () => {
    // Reference values from Redis's cluster specification and `CLUSTER KEYSLOT`.
    expect(slotOf('123456789')).toBe(12_739);
    expect(slotOf('foo')).toBe(12_182);
    expect(slotOf('{user1000}.following')).toBe(slotOf('user1000'));
    // An empty tag does not count: the whole key is hashed.
    expect(slotOf('foo{}{bar}')).toBe(8_363);
    expect(slotOf('{}x')).toBe(10_595);
  });
});
