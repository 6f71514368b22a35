-- The request a benchmark sends, and the JSON summary wrk prints at its end.
--
-- Usage: wrk ... -s bench/lua/bench.lua -- METHOD PATH BODY [HEADER ...]
-- BODY may be empty; each HEADER is "Name: value".

function init(args)
  wrk.method = args[1]
  wrk.path = args[2]
  if args[3] ~= nil and args[3] ~= "" then
    wrk.body = args[3]
  end
  for i = 4, #args do
    local name, value = string.match(args[i], "^([^:]+):%s*(.*)$")
    wrk.headers[name] = value
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH-JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
end
