/**
 * The Lua scripts of `sluice/redis` (internal), and how they are run. Each script does one
 * step that must be atomic on the server: nothing else runs between its commands, so a
 * bounded add cannot overshoot its limit, an entry is never acknowledged without being deleted
 * (or deleted without being acknowledged), and a dead-lettered entry is copied before it goes.
 *
 * Every key a script touches is passed in KEYS (so the scripts stay valid on a cluster when
 * the stream and its dead-letter stream share a hash slot, e.g. `{jobs}` and `{jobs}:dead`).
 * Scripts are sent by SHA (`EVALSHA`) and loaded with `EVAL` when the server does not know
 * them yet (first use, or after a Redis restart flushed its script cache).
 */
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import { whenReady } from "./client.js";

/** A Lua script run by SHA, reloaded on `NOSCRIPT`. */
export class RedisScript {
  readonly sha: string;
  constructor(readonly source: string) {
    this.sha = createHash("sha1").update(source).digest("hex");
  }

  /** Runs the script on `redis` with `keys` and `args`. */
  async run(redis: Redis, keys: readonly string[], args: readonly (string | number | Buffer)[]): Promise<unknown> {
    await whenReady(redis);
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (e) {
      if (!(e instanceof Error) || !e.message.startsWith("NOSCRIPT")) throw e;
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

/**
 * Bounded add. KEYS[1] stream; ARGV[1] maxLength, ARGV[2..] field, value, ... Adds the entry
 * only while XLEN < maxLength. Returns `{1, id}` when added, `{0, length}` when refused.
 * Never trims: a full stream refuses, it does not delete unread work.
 */
export const BOUNDED_ADD = new RedisScript(`
local len = redis.call('XLEN', KEYS[1])
if len >= tonumber(ARGV[1]) then return {0, len} end
return {1, redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))}
`);

/**
 * Done. KEYS[1] stream; ARGV[1] group, ARGV[2..] ids. Acknowledges each entry and, if it was
 * still pending (this delivery is the one that removes it), deletes it from the stream, so
 * XLEN is the backlog. Returns one number per id: 1 when this call removed it, 0 when it was
 * not pending any more (another consumer that had claimed it finished first).
 */
export const ACK_DELETE = new RedisScript(`
local out = {}
for i = 2, #ARGV do
  local n = redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
  if n == 1 then redis.call('XDEL', KEYS[1], ARGV[i]) end
  out[#out + 1] = n
end
return out
`);

/**
 * The shared Lua part of the scripts that deliver entries: copy an entry to the dead-letter
 * stream (its fields, then sluice's own fields), acknowledge it and delete it, in one step.
 */
const DEAD_LETTER_FN = `
local function deadLetter(stream, dead, group, id, fields, deliveries, reason)
  local args = {}
  for i = 1, #fields do args[#args + 1] = fields[i] end
  args[#args + 1] = 'sluice-id'; args[#args + 1] = id
  args[#args + 1] = 'sluice-stream'; args[#args + 1] = stream
  args[#args + 1] = 'sluice-group'; args[#args + 1] = group
  args[#args + 1] = 'sluice-deliveries'; args[#args + 1] = tostring(deliveries)
  args[#args + 1] = 'sluice-reason'; args[#args + 1] = reason
  redis.call('XADD', dead, '*', unpack(args))
  redis.call('XACK', stream, group, id)
  redis.call('XDEL', stream, id)
end
local function deliveries(stream, group, id)
  local p = redis.call('XPENDING', stream, group, id, id, 1)
  if p[1] then return p[1][4] end
  return 1
end
`;

/**
 * Dead letter now. KEYS[1] stream, KEYS[2] dead-letter stream; ARGV[1] group, ARGV[2] id,
 * ARGV[3] deliveries, ARGV[4] reason. Returns 1 when the entry was moved, 0 when it was not
 * pending any more (someone else finished or moved it first).
 */
export const DEAD_LETTER = new RedisScript(`${DEAD_LETTER_FN}
local e = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if not p[1] then return 0 end
if not e[1] then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
  return 0
end
deadLetter(KEYS[1], KEYS[2], ARGV[1], ARGV[2], e[1][2], ARGV[3], ARGV[4])
return 1
`);

/**
 * Claim. KEYS[1] stream, KEYS[2] dead-letter stream (the stream itself when there is none);
 * ARGV[1] group, ARGV[2] consumer, ARGV[3] min idle ms, ARGV[4] cursor, ARGV[5] count,
 * ARGV[6] max deliveries (0: no limit). XAUTOCLAIMs up to `count` entries idle for at least
 * `min idle` (their consumer died or stalled), reads each one's delivery count (the claim
 * counted as a delivery), and dead-letters those past the limit instead of returning them.
 * Returns `{next cursor, {{id, fields, deliveries}...}, dead-lettered, deleted}`.
 */
export const CLAIM = new RedisScript(`${DEAD_LETTER_FN}
local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5])
local maxd = tonumber(ARGV[6])
local out = {}
local dead = 0
for _, e in ipairs(r[2]) do
  if e[2] then
    local n = deliveries(KEYS[1], ARGV[1], e[1])
    if maxd > 0 and n > maxd then
      deadLetter(KEYS[1], KEYS[2], ARGV[1], e[1], e[2], n, 'max deliveries')
      dead = dead + 1
    else
      out[#out + 1] = {e[1], e[2], n}
    end
  end
end
local deleted = 0
if r[3] then deleted = #r[3] end
return {r[1], out, dead, deleted}
`);

/**
 * Own pending. KEYS[1] stream, KEYS[2] dead-letter stream (or the stream); ARGV[1] group,
 * ARGV[2] consumer, ARGV[3] after id, ARGV[4] count, ARGV[5] max deliveries (0: none). Reads
 * this consumer's own pending entries after `after id` (XREADGROUP with an id: what it had been
 * given before it restarted), acknowledges those whose entry was deleted meanwhile, and
 * dead-letters those past the limit. Returns `{{{id, fields, deliveries}...}, last id, read,
 * dead-lettered}`; `read` 0 means the history is exhausted.
 */
export const OWN_PENDING = new RedisScript(`${DEAD_LETTER_FN}
local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[4], 'STREAMS', KEYS[1], ARGV[3])
local out = {}
local dead = 0
local last = ARGV[3]
if not r or not r[1] then return {out, last, 0, 0} end
local entries = r[1][2]
local maxd = tonumber(ARGV[5])
for _, e in ipairs(entries) do
  last = e[1]
  if not e[2] then
    redis.call('XACK', KEYS[1], ARGV[1], e[1])
  else
    local n = deliveries(KEYS[1], ARGV[1], e[1])
    if maxd > 0 and n > maxd then
      deadLetter(KEYS[1], KEYS[2], ARGV[1], e[1], e[2], n, 'max deliveries')
      dead = dead + 1
    else
      out[#out + 1] = {e[1], e[2], n}
    end
  end
end
return {out, last, #entries, dead}
`);

/**
 * Touch. KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, ARGV[3..] ids. Resets the idle time
 * of each id still pending for this consumer (XCLAIM ... 0 id JUSTID: no delivery is counted),
 * so a live consumer's long tasks are not claimed by others; an id another consumer claimed
 * meanwhile is left to it (never taken back). Returns how many were touched.
 */
export const TOUCH = new RedisScript(`
local n = 0
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    n = n + 1
  end
end
return n
`);

/**
 * Prune. KEYS[1] stream; ARGV[1] group, ARGV[2] this consumer, ARGV[3] min idle ms. Deletes
 * (`XGROUP DELCONSUMER`) the group's other consumers that hold no pending entry and have been
 * idle at least `min idle` ms: consumers that died and whose entries were claimed. The check
 * and the delete are one step, so a consumer is never deleted with entries (which would make
 * them unclaimable); a live consumer deleted while idle is recreated by its next read. Without
 * it, every consumer name ever used stays listed in the group. Returns how many were deleted.
 */
export const PRUNE = new RedisScript(`
local cs = redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
local minIdle = tonumber(ARGV[3])
local n = 0
for _, c in ipairs(cs) do
  local name, pending, idle
  for i = 1, #c, 2 do
    if c[i] == 'name' then name = c[i + 1]
    elseif c[i] == 'pending' then pending = c[i + 1]
    elseif c[i] == 'idle' then idle = c[i + 1] end
  end
  if name ~= ARGV[2] and pending == 0 and idle ~= nil and idle >= minIdle then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name)
    n = n + 1
  end
end
return n
`);
