-- wrk script for the load benchmark: every request sends a different pre-signed response from
-- the pool file (one JSON body per line), so replay protection stays on and no request repeats.
-- Usage: wrk -tT -cC -dD -s scripts/wrk-pool.lua URL -- POOL_FILE T [DELAY_MS]
-- DELAY_MS paces each connection (a pause before each request), for runs below capacity.

local counter = 0
local threads = {}

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  local path, threads = args[1], tonumber(args[2])
  bodies = {}
  local n = 0
  -- Each wrk thread keeps its own share of the pool, so no two threads send the same line.
  for line in io.lines(path) do
    if n % threads == id - 1 then
      bodies[#bodies + 1] = line
    end
    n = n + 1
  end
  next_body = 0
  server_errors = 0
  pause = tonumber(args[3] or "0")
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  next_body = next_body + 1
  if next_body > #bodies then
    next_body = 1 -- pool exhausted: from here on requests are replays (422), counted by wrk
  end
  return wrk.format(nil, nil, nil, bodies[next_body])
end

function delay()
  return pause
end

function response(status, headers, body)
  if status >= 500 then
    server_errors = server_errors + 1
  end
end

function done(summary, latency, requests)
  local errors = 0
  for _, thread in ipairs(threads) do
    errors = errors + (thread:get("server_errors") or 0)
  end
  io.write(string.format("status_5xx=%d\n", errors))
  io.write(string.format("p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
