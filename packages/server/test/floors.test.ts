import { describe, expect, it } from 'vitest';
import { Arrival, OffsetFloors } from '../src/floors.js';

const { Duplicate, Next, Gap } = Arrival;

describe('OffsetFloors', () => {
  it('classifies each arrival per stream and per epoch: duplicate, next, or a gap', () => {
    const floors = new OffsetFloors();
    // A stream the connection holds no position in is not judged.
    expect(floors.classify('user:alice', 'e1', 7)).toBe(Next);
    floors.set('user:alice', 'e1', 5);
    floors.set('topic:news', 'e1', 2);
    floors.set('topic:chat', 'e1', 9);
    expect([4, 5, 6, 7].map((offset) => floors.classify('user:alice', 'e1', offset))).toEqual([Duplicate, Duplicate, Next, Gap]);
    expect([2, 3, 4].map((offset) => floors.classify('topic:news', 'e1', offset))).toEqual([Duplicate, Next, Gap]);
    expect([9, 10, 11].map((offset) => floors.classify('topic:chat', 'e1', offset))).toEqual([Duplicate, Next, Gap]);
    // Another epoch means history was lost: even its first offset may follow lost ones.
    expect(floors.classify('user:alice', 'e2', 1)).toBe(Gap);
    expect(floors.classify('topic:news', 'e2', 1)).toBe(Gap);
    floors.set('topic:news', 'e2', 0);
    expect(floors.classify('topic:news', 'e2', 1)).toBe(Next);
    expect(floors.classify('topic:news', 'e1', 3)).toBe(Gap);
    expect(floors.get('topic:news')).toEqual({ epoch: 'e2', offset: 0 });
    expect(floors.get('user:alice')).toEqual({ epoch: 'e1', offset: 5 });
    expect(floors.get('topic:other')).toBeUndefined();
  });

  it('forgets one stream on delete and everything on clear, then takes a new first stream', () => {
    const floors = new OffsetFloors();
    floors.set('user:alice', 'e1', 5);
    floors.set('topic:news', 'e1', 2);
    floors.delete('topic:news');
    expect(floors.get('topic:news')).toBeUndefined();
    expect(floors.get('user:alice')).toEqual({ epoch: 'e1', offset: 5 });
    floors.clear();
    expect(floors.get('user:alice')).toBeUndefined();
    expect(floors.classify('user:alice', 'e1', 9)).toBe(Next);
    floors.set('user:bob', 'e1', 3);
    expect(floors.classify('user:bob', 'e1', 3)).toBe(Duplicate);
    expect(floors.get('user:alice')).toBeUndefined();
  });
});
