import { describe, expect, it } from 'vitest';
import { backoff, timerWait } from '../src/backoff.js';

const bounds = { minDelayMs: 100, maxDelayMs: 5_000 };

describe('backoff', () => {
  it('returns the minimum delay when the random source returns 0, whatever the attempt', () => {
    for (const attempt of [0, 1, 5, 40]) expect(backoff(attempt, bounds, () => 0)).toBe(100);
  });

  it('doubles the ceiling with each attempt until the cap', () => {
    const top = (attempt: number) => backoff(attempt, bounds, () => 0.999_999_9);
    expect([0, 1, 2, 3, 4, 5, 6, 7].map(top)).toEqual([199, 399, 799, 1599, 3199, 4999, 4999, 4999]);
  });

  it('never exceeds the cap, even for absurd attempt numbers', () => {
    for (const attempt of [31, 64, 1_000, Number.MAX_SAFE_INTEGER]) {
      expect(backoff(attempt, bounds, () => 0.999)).toBeLessThanOrEqual(5_000);
    }
  });

  it('spreads delays over the whole jitter range instead of one value', () => {
    const delays = new Set<number>();
    for (let i = 0; i < 200; i++) delays.add(backoff(4, bounds));
    expect(delays.size).toBeGreaterThan(50);
    for (const delay of delays) {
      expect(delay).toBeGreaterThanOrEqual(100);
      expect(delay).toBeLessThanOrEqual(3_200);
    }
  });

  it('clamps a random source that strays outside [0, 1)', () => {
    expect(backoff(2, bounds, () => -3)).toBe(100);
    expect(backoff(2, bounds, () => 7)).toBe(800);
  });

  it('treats a negative or fractional attempt as its floor, at least zero', () => {
    expect(backoff(-2, bounds, () => 0.5)).toBe(backoff(0, bounds, () => 0.5));
    expect(backoff(1.7, bounds, () => 0.5)).toBe(backoff(1, bounds, () => 0.5));
  });
});

describe('timerWait', () => {
  it('resolves after the delay', async () => {
    const started = performance.now();
    await timerWait(30, new AbortController().signal);
    expect(performance.now() - started).toBeGreaterThanOrEqual(25);
  });

  it('resolves at once and clears its timer when the signal aborts', async () => {
    const controller = new AbortController();
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const waiting = timerWait(60_000, controller.signal);
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBe(before + 1);
    controller.abort();
    await waiting;
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBe(before);
  });

  it('does not start a timer for a signal that is already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    const before = process.getActiveResourcesInfo().length;
    await timerWait(60_000, controller.signal);
    expect(process.getActiveResourcesInfo().length).toBe(before);
  });
});
