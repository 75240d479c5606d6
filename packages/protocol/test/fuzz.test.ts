import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CloseCode, LIMITS, ProtocolError, parseClientMessage, parseServerMessage } from '../src/index.js';

/** Runs per property; raise for a longer fuzz: `FUZZ_RUNS=100000 npx vitest run fuzz`. */
const runs = Number(process.env.FUZZ_RUNS ?? 500);

const id = fc.string({ minLength: 1, maxLength: LIMITS.idLength });
const topic = fc.string({ minLength: 1, maxLength: LIMITS.topicLength });
const token = fc.string({ minLength: 1, maxLength: 200 });
const position = fc.record({ epoch: fc.string({ minLength: 1, maxLength: LIMITS.epochLength }), offset: fc.nat() });
// Application data: any JSON, shallow enough, without the forbidden keys.
const safeKey = fc.string({ maxLength: 10 }).filter((key) => !['__proto__', 'constructor', 'prototype'].includes(key));
const data = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    // Not -0: JSON has no negative zero, so it would come back as 0.
    fc.double({ noNaN: true, noDefaultInfinity: true }).filter((value) => !Object.is(value, -0)),
    fc.string(),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(safeKey, tie('value'), { maxKeys: 4 }),
  ),
})).value;

const optional = <T>(key: string, arbitrary: fc.Arbitrary<T>) =>
  fc.option(arbitrary, { nil: undefined }).map((value) => (value === undefined ? {} : { [key]: value }));

const validFrame = fc.oneof(
  fc.tuple(token, optional('resume', fc.dictionary(safeKey.filter((key) => key.length > 0), position, { maxKeys: 3 }))).map(
    ([t, rest]) => ({ type: 'auth', token: t, ...rest }),
  ),
  fc.tuple(data, optional('id', id), optional('token', token)).map(([d, a, b]) => ({ type: 'message', data: d, ...a, ...b })),
  fc.tuple(topic, optional('id', id), optional('since', position)).map(([t, a, b]) => ({ type: 'subscribe', topic: t, ...a, ...b })),
  fc.tuple(topic, optional('id', id)).map(([t, a]) => ({ type: 'unsubscribe', topic: t, ...a })),
  fc.tuple(topic, data, optional('id', id)).map(([t, d, a]) => ({ type: 'publish', topic: t, data: d, ...a })),
  fc.constant({ type: 'logout' }),
  optional('id', id).map((a) => ({ type: 'ping', ...a })),
);

function outcome(parse: (raw: string) => unknown, raw: string): 'ok' | 'protocol-error' {
  try {
    parse(raw);
    return 'ok';
  } catch (error) {
    // Anything else than a ProtocolError (a TypeError, a RangeError) is a parser bug.
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as ProtocolError).closeCode).toBe(CloseCode.BadRequest);
    expect(Buffer.byteLength((error as ProtocolError).message)).toBeLessThanOrEqual(123 * 4);
    return 'protocol-error';
  }
}

describe('protocol parser fuzzing (fast-check)', () => {
  it('accepts every valid client frame and returns it unchanged', () => {
    fc.assert(
      fc.property(validFrame, (frame) => {
        expect(parseClientMessage(JSON.stringify(frame))).toEqual(frame);
      }),
      { numRuns: runs },
    );
  });

  it('answers any string with a frame or a ProtocolError, never another exception', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (raw) => {
        outcome(parseClientMessage, raw);
        outcome(parseServerMessage, raw);
      }),
      { numRuns: runs },
    );
  });

  it('answers any JSON value with a frame or a ProtocolError', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
        outcome(parseClientMessage, JSON.stringify(value));
      }),
      { numRuns: runs },
    );
  });

  it('rejects a valid frame once a forbidden key is planted anywhere in it', () => {
    fc.assert(
      fc.property(validFrame, fc.constantFrom('__proto__', 'constructor', 'prototype'), (frame, key) => {
        // Planted as raw JSON text: an object literal with `__proto__` would not produce the key.
        const poisoned = `${JSON.stringify(frame).slice(0, -1)},"x":[{"${key}":{"polluted":true}}]}`;
        expect(() => parseClientMessage(poisoned)).toThrow(`frame contains the forbidden key '${key}'`);
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      }),
      { numRuns: runs },
    );
  });

  it('rejects a valid frame with a mutated field type', () => {
    fc.assert(
      fc.property(validFrame, fc.constantFrom(42, true, null, [], {}), (frame, wrong) => {
        const keys = Object.keys(frame).filter((key) => key !== 'type' && key !== 'data');
        fc.pre(keys.length > 0);
        const mutated = { ...frame, [keys[0] as string]: wrong };
        expect(outcome(parseClientMessage, JSON.stringify(mutated))).toBe('protocol-error');
      }),
      { numRuns: runs },
    );
  });
});
