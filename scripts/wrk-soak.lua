-- wrk script for the soak run: scripts/wrk-pool.lua plus a count of 5xx answers and an optional
-- pause before each request on each connection (wrk cannot pace by rate; a pause of P ms caps a
-- connection at 1000 / (P + latency) requests per second).
-- Usage: wrk -tT -cC -dD -s scripts/wrk-soak.lua URL -- POOL_FILE T [PAUSE_MS]

dofile("scripts/wrk-pool.lua")

function init_extra(args)
  server_errors = 0
  pause = tonumber(args[3] or "0")
end

function delay()
  return pause
end

function response(status, headers, body)
  if status >= 500 then
    server_errors = server_errors + 1
  end
end
