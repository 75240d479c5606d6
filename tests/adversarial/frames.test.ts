import { deflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Canary } from './helpers/canary.js';
import { Client } from './helpers/client.js';
import { type GatewayHandle, startTestGateway } from './helpers/gateway.js';
import { MiB, settledHeap } from './helpers/memory.js';
import { closeFrame, encodeFrame, Opcode, RawPeer } from './helpers/raw.js';

/** Hostile frames against the gateway process, from well-formed JSON down to raw RFC 6455 bytes. */

let gateway: GatewayHandle;
let canary: Canary;

beforeAll(async () => {
  gateway = await startTestGateway();
  canary = await Canary.onGateway(gateway);
});
afterAll(async () => {
  canary.close();
  await gateway.close();
});

const nestedObjects = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
const nestedArrays = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
const message = (data: string) => `{"type":"message","data":${data}}`;

/** An authenticated attacker on a raw socket, so any byte can follow. */
async function attacker(user = 'mallory'): Promise<RawPeer> {
  const peer = await RawPeer.connect(gateway.port);
  peer.sendJson({ type: 'auth', token: await gateway.token(user) });
  await peer.next((frame) => frame.type === 'auth_ok');
  return peer;
}

describe('hostile JSON frames from an authenticated client', () => {
  it.each<[string, string, number, string]>([
    ['invalid JSON', '{"type":', 4400, 'frame is not valid JSON'],
    ['JSON with a trailing comma', '{"type":"ping",}', 4400, 'frame is not valid JSON'],
    ['an empty frame', '', 4400, 'frame is not valid JSON'],
    ['a JSON array', '[{"type":"ping"}]', 4400, 'frame must be a JSON object, got array'],
    ['a JSON string', '"ping"', 4400, 'frame must be a JSON object, got a string of 4 characters'],
    ['a JSON number', '42', 4400, 'frame must be a JSON object, got number'],
    ['JSON null', 'null', 4400, 'frame must be a JSON object, got null'],
    ['JSON true', 'true', 4400, 'frame must be a JSON object, got boolean'],
    ['an unknown type', '{"type":"admin"}', 4400, "unknown message type 'admin'"],
    ['a type from the server side', '{"type":"auth_ok","user":"root","expiresAt":1}', 4400, "unknown message type 'auth_ok'"],
    ['a type named after an Object.prototype member', '{"type":"toString"}', 4400, "unknown message type 'toString'"],
    ['a type named __proto__', '{"type":"__proto__"}', 4400, "unknown message type '__proto__'"],
    ['a numeric type', '{"type":1}', 4400, "frame must have a string 'type', got number"],
    ['a missing required field', '{"type":"subscribe"}', 4400, "'subscribe' requires 'topic'"],
    ['a mistyped field', '{"type":"subscribe","topic":["a"]}', 4400, "'subscribe' expects 'topic' to be a string of 1-256 characters, got array"],
    ['a 257-character topic', `{"type":"subscribe","topic":"${'t'.repeat(257)}"}`, 4400,
      "'subscribe' expects 'topic' to be a string of 1-256 characters, got a string of 257 characters"],
    ['a 65-character id', `{"type":"ping","id":"${'i'.repeat(65)}"}`, 4400, "'ping' expects 'id' to be a string of 1-64 characters, got a string of 65 characters"],
    ['an unknown field', '{"type":"ping","admin":true}', 4400, "'ping' does not accept the field 'admin'"],
    ['a negative resume offset', '{"type":"subscribe","topic":"t","since":{"epoch":"e","offset":-1}}', 4400,
      "'subscribe' expects 'since' to be an object {epoch: string, offset: non-negative integer}, got object"],
    ['1,000-deep objects', message(nestedObjects(1_000)), 4400, 'frame nests deeper than 32 levels'],
    ['30,000-deep arrays (60 KB, just under maxPayload)', message(nestedArrays(30_000)), 4400, 'frame nests deeper than 32 levels'],
    ['a __proto__ key at the top', '{"type":"ping","__proto__":{"polluted":true}}', 4400, "frame contains the forbidden key '__proto__'"],
    ['a __proto__ key deep in data', message('{"a":[{"b":{"__proto__":{"polluted":true}}}]}'), 4400, "frame contains the forbidden key '__proto__'"],
    ['a constructor.prototype chain', message('{"constructor":{"prototype":{"polluted":true}}}'), 4400, "frame contains the forbidden key 'constructor'"],
    ['a prototype key', message('{"prototype":{"polluted":true}}'), 4400, "frame contains the forbidden key 'prototype'"],
    ['a __proto__ key in resume', '{"type":"auth","token":"t","resume":{"__proto__":{"epoch":"e","offset":1}}}', 4400,
      "frame contains the forbidden key '__proto__'"],
  ])('closes %s with 4400 and a precise reason; nothing is polluted', async (_name, text, code, reason) => {
    const peer = await attacker();
    peer.sendText(text);
    expect(await peer.closed()).toEqual({ code, reason });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
    await canary.assertAlive();
  });

  it.each([
    ['message', '{"type":"message","data":1}'],
    ['subscribe', '{"type":"subscribe","topic":"canary-room"}'],
    ['publish', '{"type":"publish","topic":"canary-room","data":"spoofed"}'],
    ['logout', '{"type":"logout"}'],
  ])('closes an unauthenticated %s with 4401 and publishes nothing', async (_name, text) => {
    const peer = await RawPeer.connect(gateway.port);
    peer.sendText(text);
    expect(await peer.closed()).toEqual({ code: 4401, reason: 'authenticate first' });
    await canary.assertAlive();
    expect(canary.client.messages()).not.toContain('spoofed');
  });
});

describe('hostile frames at the RFC 6455 level', () => {
  const frame = encodeFrame;
  const utf8 = (...bytes: number[]) => Buffer.from(bytes);

  it.each<[string, number, () => Buffer[]]>([
    ['a binary frame', 1003, () => [frame({ opcode: Opcode.Binary, payload: Buffer.from('{"type":"ping"}') })]],
    ['invalid UTF-8: a lone 0xFF', 1007, () => [frame({ payload: utf8(0x7b, 0xff, 0x7d) })]],
    ['invalid UTF-8: an overlong slash', 1007, () => [frame({ payload: utf8(0x22, 0xc0, 0xaf, 0x22) })]],
    ['invalid UTF-8: an encoded surrogate', 1007, () => [frame({ payload: utf8(0x22, 0xed, 0xa0, 0x80, 0x22) })]],
    ['invalid UTF-8: a code point above U+10FFFF', 1007, () => [frame({ payload: utf8(0x22, 0xf4, 0x90, 0x80, 0x80, 0x22) })]],
    ['invalid UTF-8: a truncated sequence', 1007, () => [frame({ payload: utf8(0x22, 0xe2, 0x82) })]],
    ['invalid UTF-8 split across fragments', 1007, () => [
      frame({ fin: false, payload: utf8(0x22, 0xe2) }),
      frame({ opcode: Opcode.Continuation, payload: utf8(0x28, 0xa1, 0x22) }),
    ]],
    ['invalid UTF-8 in a close reason', 1007, () => [frame({ opcode: Opcode.Close, payload: utf8(0x03, 0xe8, 0xff) })]],
    ['an unmasked frame', 1002, () => [frame({ mask: false, payload: '{"type":"ping"}' })]],
    ['RSV2 set', 1002, () => [frame({ rsv2: true, payload: '{"type":"ping"}' })]],
    ['RSV3 set', 1002, () => [frame({ rsv3: true, payload: '{"type":"ping"}' })]],
    ['reserved data opcode 0x3', 1002, () => [frame({ opcode: 0x3, payload: 'x' })]],
    ['reserved control opcode 0xB', 1002, () => [frame({ opcode: 0xb, payload: 'x' })]],
    ['a ping with a 126-byte payload', 1002, () => [frame({ opcode: Opcode.Ping, payload: Buffer.alloc(126) })]],
    ['a fragmented ping', 1002, () => [frame({ opcode: Opcode.Ping, fin: false })]],
    ['a continuation with nothing to continue', 1002, () => [frame({ opcode: Opcode.Continuation, payload: 'x' })]],
    ['a new text frame inside a fragmented message', 1002, () => [frame({ fin: false, payload: '{"ty' }), frame({ payload: '{"type":"ping"}' })]],
    ['a close frame with a 1-byte payload', 1002, () => [frame({ opcode: Opcode.Close, payload: Buffer.from([0x03]) })]],
    ...[999, 1004, 1005, 1006, 1015, 5000].map(
      (code) => [`a close frame with the reserved code ${code}`, 1002, () => [closeFrame(code)]] as [string, number, () => Buffer[]],
    ),
  ])('closes %s with %i', async (_name, code, frames) => {
    const peer = await attacker();
    for (const bytes of frames()) peer.write(bytes);
    expect((await peer.closed())?.code).toBe(code);
    await canary.assertAlive();
  });
});

describe('oversized messages (maxPayload 64 KiB)', () => {
  const KiB = 1024;

  const fragments = (count: number, size: number) => [
    encodeFrame({ fin: false, payload: 'x'.repeat(size) }),
    ...Array.from({ length: count - 2 }, () => encodeFrame({ opcode: Opcode.Continuation, fin: false, payload: 'x'.repeat(size) })),
    encodeFrame({ opcode: Opcode.Continuation, payload: 'x'.repeat(size) }),
  ];

  it.each<[string, number, () => Buffer[]]>([
    ['one 70 KB frame', 1009, () => [encodeFrame({ payload: `{"type":"message","data":"${'x'.repeat(70 * KiB)}"}` })]],
    ['two 40 KB fragments', 1009, () => fragments(2, 40 * KiB)],
    ['40 fragments of 2 KiB', 1009, () => fragments(40, 2 * KiB)],
    // ws caps fragments per message at 16,384 and closes 1008 (policy violation) beyond.
    ['20,000 one-byte fragments', 1008, () => fragments(20_000, 1)],
    ['a header announcing 1 GiB, with no payload behind it', 1009, () => [encodeFrame({ announcedLength: 1024 * MiB })]],
    ['a header announcing 2^63 - 1 bytes', 1009, () => [Buffer.from([0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4])]],
  ])('closes %s with %i, without buffering it', async (_name, code, frames) => {
    const peer = await attacker();
    peer.write(Buffer.concat(frames()));
    expect((await peer.closed())?.code).toBe(code);
    await canary.assertAlive();
  });
});

describe('compression', () => {
  it('does not negotiate permessage-deflate, so a compressed bomb is a protocol error (1002), not 1 GB of memory', async () => {
    const peer = await RawPeer.connect(gateway.port, {
      headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' },
    });
    expect(peer.head).not.toMatch(/sec-websocket-extensions/i);
    peer.sendJson({ type: 'auth', token: await gateway.token('mallory') });
    await peer.next((frame) => frame.type === 'auth_ok');
    // 256 MB of zeros deflate to about 250 KB; 60 KB of it fits under maxPayload.
    const bomb = deflateRawSync(Buffer.alloc(256 * MiB)).subarray(0, 60 * 1024);
    const before = await settledHeap();
    peer.write(encodeFrame({ rsv1: true, payload: bomb }));
    expect(await peer.closed()).toEqual({ code: 1002, reason: '' });
    expect((await settledHeap()) - before).toBeLessThan(16 * MiB);
    await canary.assertAlive();
  });
});

describe('the connection count', () => {
  it('is back to the canary alone once every hostile socket above has closed', async () => {
    expect(await gateway.health()).toMatchObject({ status: 'ok', connections: 1 });
    expect(canary.client.isOpen).toBe(true);
  });

  it('still lets a well-behaved client in', async () => {
    const client = await Client.authenticated(gateway.wsUrl, await gateway.token('alice'));
    await client.settle();
    client.close();
  });
});
