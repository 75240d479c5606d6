import { describe, expect, it } from 'vitest';
import { connectionId } from '../src/core/ids.js';

describe('connection ids', () => {
  it('are random version-4 UUIDs, distinct across a thousand draws', () => {
    const ids = Array.from({ length: 1_000 }, connectionId);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
