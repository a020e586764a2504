/**
 * The receive op of the queue script: promotes due delayed messages and expired leases, then
 * leases messages from the ready set and starts their runs.
 *
 * @module
 */

/**
 * receive — leases up to `max` due messages; with `start` 1, marks each leased run active as of
 * the lease (the server's time) (startable states only, from run-state; a missing record is left to the executor,
 * which can create it).
 *   ARGV: max, leaseMs, start 1 | "", mark 1|0
 *   reply: { nextDueInMs | -1, ~id, ~body, ~receipt, deliveries, started, watched, … } where
 *          started is 1 (now active), 0 (not asked, or no record) or ~state (the state that kept
 *          it from starting, as JSON), and watched is 1 when a process waits for the run's end
 *          (`.w`: it is announced then) else 0
 * `mark` 0 (a worker taking its next task as it finishes one) skips re-arming the wake-up marker.
 * Every receive op of a call shares one timers check and one ZPOPMIN (ARGV[1] says how many the
 * call wants in all); what is popped and not handed out goes back in place at the end.
 */
export const RECEIVE = `
  flush()
  local max, leaseMs, start = nextNumber(), nextNumber(), nextArg()
  if nextArg() == '0' then markWanted = false end
  local t = now()
  local startAt = start ~= '' and integer(t.ms) or ''
  local bound = t.ms * 30 + 29
  local due = -1
  if not timersChecked then
    local head = redis.call('ZRANGE', timers, 0, 0, 'WITHSCORES')
    if head[1] == PAUSED then
      timersChecked = true; paused = true
    elseif not head[1] then
      timersChecked = true
    elseif tonumber(head[2]) > bound then
      timersChecked = true; sawTimer(tonumber(head[2]))
    else
      local list = redis.call('ZRANGEBYSCORE', timers, '-inf', integer(bound), 'WITHSCORES', 'LIMIT', 0, 1000)
      local members, expired, turns = {}, {}, {}
      local promoted = { [0] = 0, [2] = 0 }
      for i = 1, #list, 2 do
        local member, score = list[i], tonumber(list[i + 1])
        members[#members + 1] = member
        local kind = timerKind(score)
        if string.sub(member, 1, 3) == '!r:' then
          turns[#turns + 1] = string.sub(member, 4)
        elseif kind ~= 1 then
          promoted[kind] = promoted[kind] + 1
          toBack[#toBack + 1] = 9 - score % 10; toBack[#toBack + 1] = member
        else
          local receipt, id = splitLease(member)
          local key = runKeyOf(id)
          local was = redis.call('HMGET', key, '.q', '.r')
          if receipt and was[1] == '1' and was[2] == receipt then
            freeSlot(id, receipt)
            redis.call('HSET', key, '.r', '')
            expired[#expired + 1] = 9 - score % 10; expired[#expired + 1] = id
          end
        end
      end
      redis.call('ZREM', timers, unpack(members))
      for kind, n in pairs(promoted) do
        if n > 0 then redis.call('HINCRBY', counters, delayedCounter(kind), -n) end
      end
      flush()
      toFront(expired)
      -- Rate keys' turns came due (after the ZREM: a key still waiting arms its timer again).
      for i = 1, #turns do releaseTurns(turns[i], t.ms) end
      if #members == 1000 then due = 0 end
    end
  end
  if paused then
    -- Paused: nothing is handed out (no promotion, no pop) until resumed.
    res = { -1 }
  else
    if timersChecked and earliestTimer then due = math.max(timerTime(earliestTimer) - t.ms, 0) end
    -- One ZPOPMIN for every receive op of the call.
    local have = (#pool - poolAt + 1) / 2
    if have < max and not poolDry then
      local ask = math.max(wanted, max) - have
      local got = redis.call('ZPOPMIN', readySet, ask)
      for i = 1, #got do pool[#pool + 1] = got[i] end
      if #got / 2 < ask then poolDry = true end
      have = have + #got / 2
    end
    wanted = math.max(wanted - max, 0)
    local take = math.min(max, have)
    res = { due }
    local leased = 0
    local taken, refills = 0, 0
    while taken < take do
      taken = taken + 1
      local id, readyAt = pool[poolAt], pool[poolAt + 1]
      poolAt = poolAt + 2
      local key = runKeyOf(id)
      local m = redis.call('HMGET', key, '.b', '.p', '.d', '.a', 'state', '.w', '.l', '.k', '.v')
      local body = m[1]
      local holds = false
      if body and (m[7] or m[8]) then
        local verdict
        local seq = integer(tonumber(readyAt) - (9 - priorityOf(m[2])) * 1e14)
        verdict, holds = admit(id, m, t.ms, seq)
        if verdict ~= 'lease' then
          body = nil
          -- Held back: another message takes its place in this call (bounded per call).
          if not poolDry and refills < 1000 then
            refills = refills + 1
            local got = redis.call('ZPOPMIN', readySet, 1)
            if got[1] then
              pool[#pool + 1] = got[1]; pool[#pool + 1] = got[2]; take = take + 1
            else
              poolDry = true
            end
          end
        end
      end
      if body then
        local priority, deliveries = priorityOf(m[2]), (tonumber(m[3]) or 0) + 1
        local receipt = t.stamp .. '.' .. deliveries .. (holds and 'k' or '')
        if holds then holdSlot(m[8], leaseMember(receipt, id)) end
        local set = { '.d', deliveries, '.r', receipt }
        if m[9] then set[#set + 1] = '.v'; set[#set + 1] = '' end
        local score = timerScore(t.ms + leaseMs, 1, priority)
        newLeases[#newLeases + 1] = score; newLeases[#newLeases + 1] = leaseMember(receipt, id)
        sawTimer(tonumber(score))
        leased = leased + 1
        res[#res + 1] = '~' .. id; res[#res + 1] = '~' .. body; res[#res + 1] = '~' .. receipt; res[#res + 1] = deliveries
        local started = 0
        if startAt ~= '' then
          local state = m[5]
          if state and STARTABLE[state] then
            local attempt = tonumber(m[4])
            if not attempt then
              local ok, envelope = pcall(cjson.decode, body)
              attempt = ok and type(envelope) == 'table' and tonumber(envelope.attempt)
            end
            if attempt then
              set[#set + 1] = 'state'; set[#set + 1] = ACTIVE
              set[#set + 1] = 'attempt'; set[#set + 1] = integer(attempt)
              set[#set + 1] = 'startedAt'; set[#set + 1] = startAt
              set[#set + 1] = 'updatedAt'; set[#set + 1] = startAt
              started = 1
              historyChanged(id, ACTIVE)
            end
          elseif state then
            started = '~' .. state
          end
        end
        redis.call('HSET', key, unpack(set))
        res[#res + 1] = started
        res[#res + 1] = m[6] and 1 or 0
      end
    end
    if leased > 0 then res[1] = 0 end
    -- Every message it looked at was held back by a limit and more are ready: ask again now.
    if refills >= 1000 and not poolDry then res[1] = 0 end
    if take >= max then moreReady = true end
  end
`;
