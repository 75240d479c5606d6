import { createHash } from 'node:crypto';
import type { Client } from './errors.js';

/** A Lua script run by `EVALSHA`, falling back to `EVAL` when Redis does not have it (restart, `SCRIPT FLUSH`). */
export class Script {
  readonly #source: string;
  readonly #sha: string;

  constructor(source: string) {
    this.#source = source;
    this.#sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Client, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    try {
      return await redis.evalsha(this.#sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(this.#source, keys.length, ...keys, ...args);
    }
  }
}

/**
 * Shared by the stream scripts. KEYS[1] is the stream's meta hash (`epoch`, `offset`), KEYS[2] its
 * history (a Redis Stream whose entry ids are `<offset>-0`, fields `t` = append time in ms, `p` = payload).
 */
const STREAM_LIB = `
local function now_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

-- The stream's epoch and last offset. A missing meta (never used, expired, flushed) starts a new
-- epoch from the caller's random candidate, and drops any history left from an older one.
local function state(meta, history, candidate, ttl)
  local fields = redis.call('HMGET', meta, 'epoch', 'offset')
  local epoch, offset = fields[1], tonumber(fields[2])
  if not epoch or not offset then
    epoch, offset = candidate, 0
    redis.call('DEL', history)
    redis.call('HSET', meta, 'epoch', epoch, 'offset', 0)
  end
  redis.call('PEXPIRE', meta, ttl)
  return epoch, offset
end

-- Drops the entries appended before cutoff (ms); returns the offset of the oldest entry left, or nil.
local function trim(history, cutoff)
  local start, skipped, count = '-', false, 1
  while true do
    -- Usually the oldest entry is fresh: look at it alone first, then in batches.
    local batch = redis.call('XRANGE', history, start, '+', 'COUNT', count)
    count = 128
    if #batch == 0 then
      if skipped then redis.call('DEL', history) end
      return nil
    end
    for _, entry in ipairs(batch) do
      if tonumber(entry[2][2]) >= cutoff then
        if skipped then redis.call('XTRIM', history, 'MINID', entry[1]) end
        return tonumber(string.match(entry[1], '^%d+'))
      end
      skipped = true
    end
    start = '(' .. batch[#batch][1]
  end
end
`;

/**
 * Appends a publication and hands it to every node, atomically, so offsets are allocated in the
 * order the channel delivers them. KEYS[3], when given, is the publication's idempotency key: if
 * it is already set, nothing is published and the script returns 0. ARGV: candidate epoch, stream
 * TTL (ms), max entries, max age (ms), channel, payload header without its closing brace, data,
 * idempotency window (ms). Returns the offset (0 for a duplicate).
 */
export const PUBLISH = new Script(`${STREAM_LIB}
if KEYS[3] and not redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[8]) then return 0 end
local epoch = state(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
local now = now_ms()
local payload = ARGV[6] .. ',"offset":' .. offset .. ',"epoch":"' .. epoch .. '"}\\n' .. ARGV[7]
trim(KEYS[2], now - tonumber(ARGV[4]))
redis.call('XADD', KEYS[2], 'MAXLEN', '=', ARGV[3], offset .. '-0', 't', now, 'p', payload)
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('SPUBLISH', ARGV[5], payload)
return offset
`);

/** The stream's position. ARGV: candidate epoch, stream TTL (ms). Returns {epoch, offset}. */
export const POSITION = new Script(`${STREAM_LIB}
local epoch, offset = state(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
return {epoch, offset}
`);

/**
 * What the history holds after a position, with MemoryBroker.read's semantics. ARGV: candidate
 * epoch, stream TTL (ms), max age (ms), requested epoch, requested offset. Returns
 * {epoch, offset, recovered (0|1), payload...}: payloads only when recovered.
 */
export const READ = new Script(`${STREAM_LIB}
local epoch, offset = state(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
local after = tonumber(ARGV[5])
if ARGV[4] ~= epoch or after > offset then return {epoch, offset, 0} end
local first = trim(KEYS[2], now_ms() - tonumber(ARGV[3])) or (offset + 1)
if after + 1 < first then return {epoch, offset, 0} end
local result = {epoch, offset, 1}
if after < offset then
  for _, entry in ipairs(redis.call('XRANGE', KEYS[2], (after + 1) .. '-0', '+')) do
    result[#result + 1] = entry[2][4]
  end
end
return result
`);

/**
 * A publication without a stream, sent at most once per idempotency key (KEYS[1], same slot as the
 * channel). ARGV: idempotency window (ms), channel, payload. Returns 1 when sent, 0 for a duplicate.
 */
export const BROADCAST = new Script(`
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 0 end
redis.call('SPUBLISH', ARGV[2], ARGV[3])
return 1
`);
