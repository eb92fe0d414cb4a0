-- wrk script: POST one real entry body with a valid JWT, on keep-alive connections.
-- BENCH_BODY_FILE: a file holding the entry (written by pyclient_baseline.py wrk-setup);
-- BENCH_JWT: an HS256 token with sub = the entry's service (signed beforehand, same key).
local f = assert(io.open(assert(os.getenv("BENCH_BODY_FILE"), "BENCH_BODY_FILE unset"), "rb"))
local body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. assert(os.getenv("BENCH_JWT"), "BENCH_JWT unset")

local non2xx = 0
response = function(status, headers, body)
  if status < 200 or status >= 300 then non2xx = non2xx + 1 end
end

done = function(summary, latency, requests)
  local s = summary.duration / 1e6
  io.write(string.format("RESULT bench=wrk requests=%d errors=%d rate=%.0f lat_p50=%d lat_p99=%d\n",
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout, summary.requests / s,
    latency:percentile(50) * 1000, latency:percentile(99) * 1000))
end
