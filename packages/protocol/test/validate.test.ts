import { describe, expect, it } from 'vitest';
import {
  CLOSE_CODES,
  CloseCode,
  closeCodeAction,
  LIMITS,
  MessageType,
  ProtocolError,
  parseClientMessage,
  parseServerMessage,
  toCloseReason,
} from '../src/index.js';

describe('parseClientMessage', () => {
  it.each([
    [{ type: 'auth', token: 't' }],
    [{ type: 'auth', token: 't', resume: { 'user:alice': { epoch: 'e1', offset: 3 } } }],
    [{ type: 'message', data: { any: ['json', 1, null] }, id: 'm1', token: 't' }],
    [{ type: 'message', data: null }],
    [{ type: 'subscribe', topic: 'room', id: 's', since: { epoch: 'e', offset: 0 } }],
    [{ type: 'unsubscribe', topic: 'room' }],
    [{ type: 'publish', topic: 'room', data: 'hi' }],
    [{ type: 'logout' }],
    [{ type: 'ping', id: 'p' }],
  ])('accepts %j', (frame) => {
    expect(parseClientMessage(JSON.stringify(frame))).toEqual(frame);
  });

  it.each([
    ['not JSON', 'nope', 'frame is not valid JSON'],
    ['null', 'null', 'frame must be a JSON object, got null'],
    ['a number', '5', 'frame must be a JSON object, got number'],
    ['an unknown type', '{"type":"toString"}', "unknown message type 'toString'"],
    ['a server-only type', '{"type":"auth_ok","user":"a","expiresAt":1}', "unknown message type 'auth_ok'"],
    ['a non-string token', '{"type":"auth","token":5}', "'auth' expects 'token' to be a string of 1-8192 characters, got number"],
    ['an empty token', '{"type":"auth","token":""}', "'auth' expects 'token' to be a string of 1-8192 characters, got a string of 0 characters"],
    ['an oversized token', JSON.stringify({ type: 'auth', token: 'x'.repeat(LIMITS.tokenLength + 1) }), "'auth' expects 'token' to be a string of 1-8192 characters, got a string of 8193 characters"],
    ['a numeric id', '{"type":"ping","id":1}', "'ping' expects 'id' to be a string of 1-64 characters, got number"],
    ['message without data', '{"type":"message"}', "'message' requires 'data'"],
    ['a bad resume', '{"type":"auth","token":"t","resume":{"s":5}}', "'auth' expects 'resume' to be an object of stream positions {epoch, offset}, got object"],
    ['a negative offset', '{"type":"subscribe","topic":"t","since":{"epoch":"e","offset":-1}}', "'subscribe' expects 'since' to be an object {epoch: string, offset: non-negative integer}, got object"],
    ['a prototype key', '{"type":"message","data":[{"prototype":1}]}', "frame contains the forbidden key 'prototype'"],
    ['a __proto__ key at the top', '{"type":"ping","__proto__":{}}', "frame contains the forbidden key '__proto__'"],
  ])('rejects %s with a precise message', (_name, raw, message) => {
    const error = (() => {
      try {
        parseClientMessage(raw);
      } catch (caught) {
        return caught;
      }
      throw new Error('expected a ProtocolError');
    })();
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error).toMatchObject({ code: 'ERR_PROTOCOL', closeCode: CloseCode.BadRequest, message });
  });

  it('rejects nesting one level past the limit but accepts the limit itself', () => {
    const nest = (depth: number): unknown => (depth === 0 ? 0 : [nest(depth - 1)]);
    // The frame object is level 1, so data may nest LIMITS.depth - 1 levels.
    expect(() => parseClientMessage(JSON.stringify({ type: 'message', data: nest(LIMITS.depth - 1) }))).not.toThrow();
    expect(() => parseClientMessage(JSON.stringify({ type: 'message', data: nest(LIMITS.depth) }))).toThrow(
      `frame nests deeper than ${LIMITS.depth} levels`,
    );
  });

  it('survives 100,000-deep nesting without a stack overflow', () => {
    const raw = `{"type":"message","data":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    expect(() => parseClientMessage(raw)).toThrow(ProtocolError);
  });
});

describe('parseServerMessage', () => {
  it('accepts every server frame of the protocol', () => {
    const frames = [
      { type: MessageType.AuthOk, user: 'alice', expiresAt: 1 },
      { type: MessageType.ReauthRequired, deadline: 2, reason: 'expiring' },
      { type: MessageType.Message, data: 1, topic: 't', stream: 's', offset: 0, epoch: 'e' },
      { type: MessageType.Ack, id: 'a' },
      { type: MessageType.Error, code: 'rate_limited', message: 'rate limited', retryAfter: 10 },
      { type: MessageType.LoggedOut },
      { type: MessageType.Pong },
    ];
    for (const frame of frames) expect(parseServerMessage(JSON.stringify(frame))).toEqual(frame);
  });

  it('rejects an unknown reauth reason', () => {
    expect(() => parseServerMessage('{"type":"reauth_required","deadline":1,"reason":"bored"}')).toThrow(
      "'reauth_required' expects 'reason' to be one of 'expiring', 'expired', got a string of 5 characters",
    );
  });
});

describe('close codes', () => {
  it.each([
    [CloseCode.Normal, 'stop'],
    [CloseCode.GoingAway, 'backoff'],
    [CloseCode.Abnormal, 'backoff'],
    [CloseCode.SlowConsumer, 'backoff'],
    [CloseCode.BadRequest, 'stop'],
    [CloseCode.Unauthorized, 'refresh-once'],
    [CloseCode.Forbidden, 'stop'],
    [CloseCode.AuthTimeout, 'backoff'],
    [CloseCode.TokenExpired, 'refresh-now'],
    [CloseCode.RateLimited, 'retry-after'],
    [1012, 'backoff'],
    [4999, 'stop'],
  ])('tells the client what to do after %i: %s', (code, action) => {
    expect(closeCodeAction(code)).toBe(action);
  });

  it('has a name for every code in the enum', () => {
    const codes = Object.values(CloseCode).filter((value): value is number => typeof value === 'number');
    expect(Object.keys(CLOSE_CODES).map(Number).sort()).toEqual([...codes].sort());
  });
});

describe('toCloseReason', () => {
  it('cuts reasons to 123 UTF-8 bytes without splitting a character', () => {
    expect(toCloseReason('short')).toBe('short');
    const cut = toCloseReason('é'.repeat(100));
    expect(Buffer.byteLength(cut)).toBe(122);
    expect(cut).toBe('é'.repeat(61));
  });
});
