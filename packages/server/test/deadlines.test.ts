import { describe, expect, it } from 'vitest';
import { DeadlineQueue, ManualClock } from '../src/index.js';
import { KeyedRateLimiter, WindowCounter } from '../src/rate-limit.js';

describe('DeadlineQueue', () => {
  it('runs deadlines in time order, once each, on one timer', () => {
    const clock = new ManualClock(0);
    const queue = new DeadlineQueue(clock);
    const ran: string[] = [];
    queue.schedule(300, () => ran.push('c'));
    queue.schedule(100, () => ran.push('a'));
    queue.schedule(200, () => ran.push('b'));
    queue.schedule(100, () => ran.push('a2'));
    clock.advance(150);
    expect(ran).toEqual(['a', 'a2']);
    clock.advance(1_000);
    expect(ran).toEqual(['a', 'a2', 'b', 'c']);
    expect(queue.size).toBe(0);
  });

  it('skips cancelled deadlines', () => {
    const clock = new ManualClock(0);
    const queue = new DeadlineQueue(clock);
    const ran: number[] = [];
    const first = queue.schedule(10, () => ran.push(1));
    queue.schedule(20, () => ran.push(2));
    first.cancel();
    expect(queue.size).toBe(1);
    clock.advance(100);
    expect(ran).toEqual([2]);
    first.cancel();
    expect(queue.size).toBe(0);
  });

  it('keeps the order when thousands of deadlines are cancelled out of the middle of the heap', () => {
    const clock = new ManualClock(0);
    const queue = new DeadlineQueue(clock);
    const ran: number[] = [];
    const kept: number[] = [];
    const deadlines = Array.from({ length: 5_000 }, (_, i) => {
      const at = (i * 7_919) % 5_003;
      return { at, deadline: queue.schedule(at, (value: number) => ran.push(value), at) };
    });
    for (const [i, { at, deadline }] of deadlines.entries()) {
      if (i % 3 === 0) deadline.cancel();
      else kept.push(at);
    }
    expect(queue.size).toBe(kept.length);
    clock.advance(10_000);
    expect(ran).toEqual(kept.sort((a, b) => a - b));
    expect(queue.size).toBe(0);
  });

  it('handles 10,000 random deadlines in order', () => {
    const clock = new ManualClock(0);
    const queue = new DeadlineQueue(clock);
    const ran: number[] = [];
    for (let i = 0; i < 10_000; i++) {
      const at = (i * 7_919) % 10_007;
      queue.schedule(at, () => ran.push(at));
    }
    clock.advance(20_000);
    expect(ran).toHaveLength(10_000);
    expect(ran).toEqual([...ran].sort((a, b) => a - b));
  });

  it('re-arms deadlines beyond the longest setTimeout delay', () => {
    const clock = new ManualClock(0);
    const queue = new DeadlineQueue(clock);
    let ran = false;
    queue.schedule(2 ** 33, () => {
      ran = true;
    });
    clock.advance(2 ** 31);
    expect(ran).toBe(false);
    clock.advance(2 ** 33);
    expect(ran).toBe(true);
  });
});

describe('rate limits', () => {
  it('allows `limit` hits per window and reports the wait after that', () => {
    const counter = new WindowCounter();
    const rule = { limit: 2, windowMs: 1_000 };
    expect([counter.hit(rule, 0), counter.hit(rule, 10), counter.hit(rule, 400)]).toEqual([0, 0, 600]);
    expect(counter.hit(rule, 1_000)).toBe(0);
  });

  it('counts keys separately', () => {
    const limiter = new KeyedRateLimiter({ limit: 1, windowMs: 1_000 });
    expect(limiter.hit('a', 0)).toBe(0);
    expect(limiter.hit('b', 0)).toBe(0);
    expect(limiter.hit('a', 1)).toBe(999);
    expect(limiter.hit('a', 1_000)).toBe(0);
  });
});
