/**
 * The run history of the Redis backend (`store.history`), in Lua. The queue script keeps the
 * indexes inside the ops that write a run's state, so they cost no round trip; the history
 * script reads them.
 *
 * Keys, under the queue's hash tag B (one slot per queue, as every other key of it):
 *   B:h            ZSET  id → enqueuedAt: the queue's recent runs
 *   B:ht:<task>    ZSET  id → enqueuedAt: the recent runs of a task (<task> as stored, JSON)
 *   B:he:<state>   ZSET  id → finishedAt: the runs that ended in an ended state (plain name)
 *   B:hk:<key>     ZSET  id → enqueuedAt: the runs of an idempotency key (expires)
 *   B:hl           STREAM of state changes (i id, s state as stored), capped (MAXLEN ~)
 *   B:hr           "a reader follows the log" (expires): the log is written only while it exists
 * Every index is capped at `maxRuns`: trimmed from its oldest end by the call that sends the
 * queue's 64th message since the last trim (the task indexes that call wrote, the others all);
 * an entry whose record has expired is dropped by the first listing that meets it.
 *
 * @module
 */
import { RUN_STATES, storedState } from "../../../backend.ts";
import { ENDED_STATES } from "../../../src/history/_query.ts";

/** What the queue script keeps for the history; `false`: nothing. */
export interface HistoryConfig {
  maxRuns: number;
  changes: number;
  /** How long a run stays findable by its idempotency key (the key's index expires). */
  keyTtlMs: number;
}

/** The indexes are trimmed to their cap once per this many runs sent (or records made). */
export const TRIM_EVERY = 64;

/** How long the change log is written after its last read. */
export const READER_TTL_MS = 60_000;

const ended = [...ENDED_STATES].map((s) => `['${storedState(s)}'] = '${s}'`).join(", ");

/**
 * The queue script's history helpers (after the prelude): `historyAdded(id, f, counted)` for a
 * record written with its `enqueuedAt` (f: the fields written; counted: its message is sent),
 * `historyChanged(id, state, at)` for a state written (as stored), `historyEnd()` at the end of
 * the call (the indexes' writes, one ZADD each, and the trim).
 */
export function historyWrites(config: HistoryConfig | false): string {
  if (config === false) {
    return `
local function historyAdded(id, f, counted) end
local function historyChanged(id, state, at) end
local function historyEnd() end
local function historyRecorded(id, f, was, replace) end
`;
  }
  return `
local ENDED = { ${ended} }
local SCHEDULED, QUEUED = '${storedState("scheduled")}', '${storedState("queued")}'

-- What this call adds to each index ({score, id, …} by key), written in one ZADD per index as
-- the call ends (historyEnd); the task indexes it wrote; historyDue (prelude): trim them then.
local historyPending, historyTasks, historyReading = {}, {}, nil
local function historyIndex(key, score, id)
  local list = historyPending[key]
  if not list then list = {}; historyPending[key] = list end
  list[#list + 1] = score; list[#list + 1] = id
end
local function historyAdded(id, f, counted)
  local at = fieldOf(f, 'enqueuedAt')
  if not at then return end
  -- A run created scheduled is at enqueuedAt + 0.5 (exact for times in ms), so a reader of new
  -- runs knows the state it was created in without a log entry.
  if fieldOf(f, 'state') == SCHEDULED then at = integer(tonumber(at)) .. '.5' end
  historyIndex(queueBase .. ':h', at, id)
  local task = fieldOf(f, 'task')
  if task then
    historyIndex(queueBase .. ':ht:' .. task, at, id)
    historyTasks[task] = true
  end
  local key = fieldOf(f, 'idempotencyKey')
  if key then
    local k = queueBase .. ':hk:' .. key
    redis.call('ZADD', k, at, id)
    redis.call('PEXPIRE', k, ${config.keyTtlMs})
  end
  -- A record made without a message (a push delivery's) is counted here; a message is counted
  -- by the back counter it takes (flush).
  if not counted and redis.call('HINCRBY', counters, 'h', 1) % ${TRIM_EVERY} == 0 then historyDue = true end
end
local function historyChanged(id, state, at)
  local name = ENDED[state]
  if name then historyIndex(queueBase .. ':he:' .. name, at or now().ms, id) end
  if historyReading == nil then historyReading = redis.call('EXISTS', queueBase .. ':hr') == 1 end
  if historyReading then
    redis.call('XADD', queueBase .. ':hl', 'MAXLEN', '~', ${config.changes}, '*', 'i', id, 's', state)
  end
end
-- A record written by an update (was: its state before, as stored, or 'missing'): one made
-- anew joins the indexes (its first state is theirs to tell); a state changed is logged.
local function historyRecorded(id, f, was, replace)
  local state = fieldOf(f, 'state')
  local created = was == 'missing' or replace
  if created then historyAdded(id, f, false) end
  if state and state ~= was and not (created and (state == SCHEDULED or state == QUEUED)) then
    historyChanged(id, state, tonumber(fieldOf(f, 'finishedAt')))
  end
end
local function historyEnd()
  for key, list in pairs(historyPending) do
    -- (In slices: unpack has a limit on how many values it returns.)
    for from = 1, #list, 4000 do
      redis.call('ZADD', key, unpack(list, from, math.min(from + 3999, #list)))
    end
  end
  if not historyDue then return end
  local keep = -${config.maxRuns} - 1
  redis.call('ZREMRANGEBYRANK', queueBase .. ':h', 0, keep)
  for task in pairs(historyTasks) do redis.call('ZREMRANGEBYRANK', queueBase .. ':ht:' .. task, 0, keep) end
  for _, name in pairs(ENDED) do redis.call('ZREMRANGEBYRANK', queueBase .. ':he:' .. name, 0, keep) end
end
`;
}

/** The states by their stored form (JSON), for the history script. */
const plain = RUN_STATES.map((s) => `['${storedState(s)}'] = '${s}'`).join(", ");

/**
 * The history script: reads one queue's history. KEYS[1]: the queue's ready set (B:r, for B).
 * ARGV[1] the op:
 *
 * list — a page of an index, newest first, below a cursor.
 *   ARGV: 'L', index key suffix (h, ht:<task>, he:<state>, hk:<key>), cursor score | "",
 *         cursor id | "", from | "", to | "", limit, scan budget, state | "" (as stored), task |
 *         "" (as stored), idempotency key | "" (as stored), text | "" (lower case)
 *   reply: { scanned, more 1|0, ~stopScore, ~stopId, { ~id, ~score, ~field, ~value, … }, … }
 *          more: entries below the stop may match (the stop is the last entry looked at)
 * An entry whose record is gone leaves the index.
 *
 * get — a run record with its message's fields.
 *   ARGV: 'G', id; reply: { ~field, ~value, … }
 *
 * changes — the runs created after an index position and the log after a stream id (after "":
 *   from now); marks the log read for a while (the queue script writes it only then).
 *   ARGV: 'C', after stream id | "", after score, after id, limit
 *   reply from now: { ~lastStreamId, ~newestScore, ~newestId }
 *   reply: { n, (~score, ~id, ~queued|scheduled, ~task) × n, (~streamId, ~id, ~state, ~task)… }
 *          (states plain; the task as stored, JSON, or "" when the record is gone)
 */
export const HISTORY_SCRIPT_SOURCE = `
local queueBase = string.sub(KEYS[1], 1, -3)
local PLAIN = { ${plain} }
local op = ARGV[1]
local function runKeyOf(id) return queueBase .. ':run:' .. id end
local function tilde(list)
  for i = 1, #list do list[i] = '~' .. list[i] end
  return list
end
if op == 'G' then
  return tilde(redis.call('HGETALL', runKeyOf(ARGV[2])))
end
if op == 'C' then
  local log, index = queueBase .. ':hl', queueBase .. ':h'
  local after, afterScore, afterId, limit = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
  redis.call('SET', queueBase .. ':hr', '1', 'PX', ${READER_TTL_MS})
  if after == '' then
    local last = redis.call('XREVRANGE', log, '+', '-', 'COUNT', 1)
    local newest = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
    return { '~' .. (last[1] and last[1][1] or '0-0'), '~' .. (newest[2] or '0'), '~' .. (newest[1] or '') }
  end
  local out = { 0 }
  -- Runs created since (the newest index entries above the cursor), then the log's changes.
  local n, offset = 0, 0
  while n < limit do
    local created = redis.call('ZRANGEBYSCORE', index, afterScore, '+inf', 'WITHSCORES', 'LIMIT', offset, limit)
    for i = 1, #created, 2 do
      local id, score = created[i], created[i + 1]
      -- (Runs at the cursor's own time up to its id were seen.)
      if n < limit and (tonumber(score) > tonumber(afterScore) or id > afterId) then
        n = n + 1
        out[#out + 1] = '~' .. score; out[#out + 1] = '~' .. id
        out[#out + 1] = string.sub(score, -2) == '.5' and '~scheduled' or '~queued'
        out[#out + 1] = '~' .. (redis.call('HGET', runKeyOf(id), 'task') or '')
      end
    end
    if #created < 2 * limit then break end
    offset = offset + limit
  end
  out[1] = n
  local entries = redis.call('XRANGE', log, '(' .. after, '+', 'COUNT', limit)
  for i = 1, #entries do
    local e, f = entries[i], entries[i][2]
    local id, state
    for j = 1, #f, 2 do
      if f[j] == 'i' then id = f[j + 1] elseif f[j] == 's' then state = f[j + 1] end
    end
    out[#out + 1] = '~' .. e[1]; out[#out + 1] = '~' .. (id or '')
    out[#out + 1] = '~' .. (PLAIN[state] or '')
    out[#out + 1] = '~' .. (id and redis.call('HGET', runKeyOf(id), 'task') or '')
  end
  return out
end
if op ~= 'L' then return redis.error_reply('celeriac: unknown history op ' .. tostring(op)) end
local key = queueBase .. ':' .. ARGV[2]
local cursorScore, cursorId, from, to = tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local limit, budget = tonumber(ARGV[7]), tonumber(ARGV[8])
local wantState, wantTask, wantKey, text = ARGV[9], ARGV[10], ARGV[11], ARGV[12]
-- The highest rank to look at: just below the cursor (in the index's order: score, then id).
local top = redis.call('ZCARD', key) - 1
if cursorScore then
  local s = redis.call('ZSCORE', key, cursorId)
  if s and tonumber(s) == cursorScore then
    top = redis.call('ZRANK', key, cursorId) - 1
  else
    local below = redis.call('ZCOUNT', key, '-inf', '(' .. ARGV[3])
    local ties = redis.call('ZRANGEBYSCORE', key, ARGV[3], ARGV[3])
    for i = 1, #ties do if ties[i] < cursorId then below = below + 1 end end
    top = below - 1
  end
end
if to then top = math.min(top, redis.call('ZCOUNT', key, '-inf', '(' .. ARGV[6]) - 1) end
local function contains(value)
  return value and string.find(string.lower(value), text, 1, true) ~= nil
end
local out = { 0, 0, '~', '~' }
local scanned, found, more = 0, 0, false
local stopScore, stopId = '', ''
while top >= 0 and found < limit do
  if scanned >= budget then more = true; break end
  local window = math.min(budget - scanned, 100)
  local entries = redis.call('ZRANGE', key, math.max(0, top - window + 1), top, 'WITHSCORES')
  top = top - #entries / 2
  for i = #entries - 1, 1, -2 do
    local id, score = entries[i], entries[i + 1]
    if from and tonumber(score) < from then top = -1; break end
    scanned = scanned + 1
    stopScore, stopId = score, id
    local fields = redis.call('HGETALL', runKeyOf(id))
    if #fields == 0 then
      redis.call('ZREM', key, id)
    else
      local r = {}
      for j = 1, #fields, 2 do r[fields[j]] = fields[j + 1] end
      local ok = r.state ~= nil
        and (wantState == '' or r.state == wantState)
        and (wantTask == '' or r.task == wantTask)
        and (wantKey == '' or r.idempotencyKey == wantKey)
        and (text == '' or contains(r['.b']) or contains(r.result) or contains(r.error))
      if ok then
        found = found + 1
        local run = { '~' .. id, '~' .. score }
        for j = 1, #fields do run[#run + 1] = '~' .. fields[j] end
        out[#out + 1] = run
        if found >= limit then
          if i > 1 or top >= 0 then more = true end
          break
        end
      end
    end
  end
end
out[1] = scanned
out[2] = more and 1 or 0
out[3] = '~' .. stopScore
out[4] = '~' .. stopId
return out
`;
