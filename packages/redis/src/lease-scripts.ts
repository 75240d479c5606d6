import { Script } from './scripts.js';

// The lease scripts. Every one touches one key, so each is valid on Redis Cluster. A value written
// under a lease is `<lease id>\n<json>`, so a script can tell whose it is without decoding JSON.

/** Redis's own clock, so that the nodes' clocks never decide who is alive. */
const NOW_MS = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
`;

/** Counts the values of hash KEYS[1] written under a live lease (the lease ids in ARGV from `first`). */
const COUNT_LIVE = `
local function count_live(first)
  local live = {}
  for i = first, #ARGV do live[ARGV[i]] = true end
  local count = 0
  for _, value in ipairs(redis.call('HVALS', KEYS[1])) do
    local newline = string.find(value, '\\n', 1, true)
    if newline and live[string.sub(value, 1, newline - 1)] then count = count + 1 end
  end
  return count
end
`;

/** Takes lease ARGV[1] for ARGV[2] ms from now (KEYS[1]: the lease zset, member → deadline ms). */
export const ACQUIRE = new Script(`${NOW_MS}
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1
`);

/** Extends lease ARGV[1] by ARGV[2] ms if it is still live; 0 (and nothing changed) when it lapsed or is gone. */
export const RENEW = new Script(`${NOW_MS}
local deadline = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not deadline or tonumber(deadline) <= now then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1
`);

/** Marks dead (deadline 0, for a sweep) the leases ARGV[2...] unless one is ARGV[1] (the current): only ids this process held. */
export const RETIRE = new Script(`
local retired = 0
for i = 2, #ARGV do
  local deadline = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if ARGV[i] ~= ARGV[1] and deadline and tonumber(deadline) > 0 then
    redis.call('ZADD', KEYS[1], 0, ARGV[i])
    retired = retired + 1
  end
end
return retired
`);

/** The live lease ids starting with ARGV[1] (a node's leases), each followed by its deadline. */
export const NODE_LEASES = new Script(`${NOW_MS}
local result = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES')
local filtered = {}
for i = 1, #result, 2 do
  if string.sub(result[i], 1, #ARGV[1]) == ARGV[1] then
    table.insert(filtered, result[i])
    table.insert(filtered, result[i + 1])
  end
end
return filtered
`);

/** The live lease ids (deadline after now). */
export const LIVE = new Script(`${NOW_MS}
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
`);

/*
 * The sweep's states, in the lease's score, so that claiming is one single-key script. A score
 * above now is a live lease; 0 or a past deadline a dead one nobody sweeps yet. A negative score is
 * -(until * 4 + phase): phase 1 = claimed for the first sweep until the time `until`; 2 = swept once, a
 * tombstone until the time `until` (writes still in flight may re-create its entries); 3 = claimed for the
 * second, last sweep. A claim not extended by the time `until` (its sweeper died) is taken over.
 */
const PHASE = `
local function encode(until_ms, phase) return string.format('%.0f', -(until_ms * 4 + phase)) end
local function phase_of(score) return (-score) % 4 end
`;

/**
 * Claims up to ARGV[1] leases to sweep for ARGV[2] ms: dead ones nobody claimed, tombstones due and
 * claims that timed out. Returns lease, phase (1: first sweep, 3: last) pairs.
 */
export const CLAIM = new Script(`${NOW_MS}${PHASE}
local limit = tonumber(ARGV[1])
local claim_until = now + tonumber(ARGV[2])
local claimed = {}
for _, lease in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], 0, now, 'LIMIT', 0, limit)) do
  redis.call('ZADD', KEYS[1], encode(claim_until, 1), lease)
  table.insert(claimed, lease)
  table.insert(claimed, 1)
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], string.format('%.0f', -(now * 4 + 3)), '(0', 'WITHSCORES', 'LIMIT', 0, limit)
for i = 1, #due, 2 do
  if #claimed >= limit * 2 then break end
  local phase = phase_of(tonumber(due[i + 1]))
  if phase == 2 then phase = 3 end
  redis.call('ZADD', KEYS[1], encode(claim_until, phase), due[i])
  table.insert(claimed, due[i])
  table.insert(claimed, phase)
end
return claimed
`);

/** Extends the claim (phase ARGV[2]) on lease ARGV[1] by ARGV[3] ms; 0 if it is no longer in that phase. */
export const EXTEND_CLAIM = new Script(`${NOW_MS}${PHASE}
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) >= 0 or phase_of(tonumber(score)) ~= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], encode(now + tonumber(ARGV[3]), tonumber(ARGV[2])), ARGV[1])
return 1
`);

/**
 * Ends a sweep of lease ARGV[1] in phase ARGV[2]: after the first, a tombstone for ARGV[3] ms (then
 * swept again); after the last, the lease is removed. Nothing changes if the phase moved on.
 */
export const FINISH_SWEEP = new Script(`${NOW_MS}${PHASE}
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) >= 0 or phase_of(tonumber(score)) ~= tonumber(ARGV[2]) then return 0 end
if tonumber(ARGV[2]) == 1 then
  redis.call('ZADD', KEYS[1], encode(now + tonumber(ARGV[3]), 2), ARGV[1])
else
  redis.call('ZREM', KEYS[1], ARGV[1])
end
return 1
`);

/** Deletes field ARGV[1] of hash KEYS[1] if it was written under lease ARGV[2] (not rewritten since). */
export const HDEL_IF_LEASE = new Script(`
local value = redis.call('HGET', KEYS[1], ARGV[1])
if value and string.sub(value, 1, #ARGV[2] + 1) == ARGV[2] .. '\\n' then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
`);

/** Deletes string KEYS[1] if it was written under lease ARGV[1]. */
export const DEL_IF_LEASE = new Script(`
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, #ARGV[1] + 1) == ARGV[1] .. '\\n' then return redis.call('DEL', KEYS[1]) end
return 0
`);

/**
 * Adds member ARGV[1] (value ARGV[2]) to presence hash KEYS[1] unless it holds ARGV[3] live members
 * already (ARGV[3] < 0: no cap; a member already there is replaced). ARGV[4...]: the live lease
 * ids. Counted and added in one step, so nodes racing cannot pass the cap. Returns 1 added, 0 full.
 */
export const JOIN = new Script(`${COUNT_LIVE}
local max = tonumber(ARGV[3])
-- HLEN first: below the cap no scan of the topic's values is needed.
if max >= 0 and redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and redis.call('HLEN', KEYS[1]) >= max and count_live(4) >= max then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`);

/** The members of presence hash KEYS[1] written under a live lease (ARGV: the live lease ids). */
export const COUNT = new Script(`${COUNT_LIVE}
return count_live(1)
`);

/** Splits `<lease>\n<json>`: the lease id and the JSON, or undefined for a value this engine did not write. */
export function leased(value: string): { lease: string; json: string } | undefined {
  const newline = value.indexOf('\n');
  return newline < 0 ? undefined : { lease: value.slice(0, newline), json: value.slice(newline + 1) };
}

/** The values written under a live lease, as `parse` validates them; anything this engine did not write is left out. */
export function liveValues<T>(values: readonly string[], live: ReadonlySet<string>, parse: (value: unknown) => T | undefined): T[] {
  const result: T[] = [];
  for (const value of values) {
    const entry = leased(value);
    if (entry === undefined || !live.has(entry.lease)) continue;
    let json: unknown;
    try {
      json = JSON.parse(entry.json);
    } catch {
      continue;
    }
    const parsed = parse(json);
    if (parsed !== undefined) result.push(parsed);
  }
  return result;
}
