-- wrk script for the load benchmark: every request sends a different pre-signed response from
-- the pool file (one JSON body per line), so replay protection stays on and no request repeats.
-- Usage: wrk -tT -cC -dD -s scripts/wrk-pool.lua URL -- POOL_FILE T
-- Requests are formatted once in init and no response() hook is defined (wrk then skips
-- handing each body to Lua): the generator shares the two cores with the server, so every
-- microsecond it spends is one the server does not get. wrk counts non-2xx answers itself.

local counter = 0
threads = {}

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  local path, threads = args[1], tonumber(args[2])
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  requests = {}
  local n = 0
  -- Each wrk thread keeps its own share of the pool, so no two threads send the same line.
  for line in io.lines(path) do
    if n % threads == id - 1 then
      requests[#requests + 1] = wrk.format(nil, nil, nil, line)
    end
    n = n + 1
  end
  next_request = 0
  replays = 0
  init_extra(args)
end

function init_extra(args) end

function request()
  next_request = next_request + 1
  if replays > 0 or next_request > #requests then
    -- This thread's share of the pool is used up: from here on its requests are replays
    -- (422 `replayed`), which wrk counts as non-2xx; done() reports how many were sent.
    replays = replays + 1
    if next_request > #requests then
      next_request = 1
    end
  end
  return requests[next_request]
end

function done(summary, latency, requests)
  local replays_total = 0
  for _, thread in ipairs(threads) do
    replays_total = replays_total + (thread:get("replays") or 0)
    local errors = thread:get("server_errors")
    if errors then
      server_errors_total = (server_errors_total or 0) + errors
    end
  end
  if server_errors_total then
    io.write(string.format("status_5xx=%d\n", server_errors_total))
  end
  io.write(string.format("replays_sent=%d\n", replays_total))
  io.write(string.format("p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
