import { describe, expect, it } from 'vitest';
import { OffsetFloors } from '../src/floors.js';

describe('OffsetFloors', () => {
  it('covers what a stream has been given, per stream and per epoch', () => {
    const floors = new OffsetFloors();
    expect(floors.covers('user:alice', 'e1', 1)).toBe(false);
    floors.set('user:alice', 'e1', 5);
    floors.set('topic:news', 'e1', 2);
    floors.set('topic:chat', 'e1', 9);
    expect([5, 6].map((offset) => floors.covers('user:alice', 'e1', offset))).toEqual([true, false]);
    expect([2, 3].map((offset) => floors.covers('topic:news', 'e1', offset))).toEqual([true, false]);
    expect([9, 10].map((offset) => floors.covers('topic:chat', 'e1', offset))).toEqual([true, false]);
    // Another epoch restarts offsets: never compared with the old one.
    expect(floors.covers('user:alice', 'e2', 1)).toBe(false);
    floors.set('topic:news', 'e2', 1);
    expect(floors.covers('topic:news', 'e1', 2)).toBe(false);
    expect(floors.covers('topic:news', 'e2', 1)).toBe(true);
    floors.set('user:alice', 'e1', 7);
    expect(floors.covers('user:alice', 'e1', 7)).toBe(true);
  });

  it('forgets everything on clear, then takes a new first stream', () => {
    const floors = new OffsetFloors();
    floors.set('user:alice', 'e1', 5);
    floors.set('topic:news', 'e1', 2);
    floors.clear();
    expect(floors.covers('user:alice', 'e1', 1)).toBe(false);
    expect(floors.covers('topic:news', 'e1', 1)).toBe(false);
    floors.set('user:bob', 'e1', 3);
    expect(floors.covers('user:bob', 'e1', 3)).toBe(true);
    expect(floors.covers('user:alice', 'e1', 1)).toBe(false);
  });
});
