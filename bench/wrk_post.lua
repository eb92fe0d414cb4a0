-- wrk script: POST one real entry body with a valid JWT, on keep-alive connections.
-- BENCH_BODY_FILE: a file holding the entry (written by pyclient_baseline.py wrk-setup);
-- BENCH_JWT: an HS256 token with sub = the entry's service (signed beforehand, same key).
--
-- Every request carries its own request_id, as the library's entries do: the receiver keeps
-- the ids it has seen, and a new id costs it more than a repeated one (with one constant id,
-- measured: about 42 µs of receiver CPU per request against 55 µs with distinct ids), which
-- would flatter wrk. The rest of the body is the same bytes every time.
local f = assert(io.open(assert(os.getenv("BENCH_BODY_FILE"), "BENCH_BODY_FILE unset"), "rb"))
local body = f:read("*a")
f:close()
local s, e = body:find('"request_id":"[^"]*"')
assert(s, "no request_id in the body")
local pre, post = body:sub(1, s + 13), body:sub(e)
local headers = {
  ["Content-Type"] = "application/json",
  ["Authorization"] = "Bearer " .. assert(os.getenv("BENCH_JWT"), "BENCH_JWT unset"),
}

-- A random prefix per thread (from /dev/urandom), then a counter: ids stay distinct across
-- threads and across the wrk runs made against one receiver.
local tag
local n = 0
init = function(args)
  local r = assert(io.open("/dev/urandom", "rb"))
  local b = r:read(4)
  r:close()
  tag = string.format("%02x%02x%02x%02x", b:byte(1, 4))
end

request = function()
  n = n + 1
  return wrk.format("POST", "/log", headers,
    pre .. tag .. string.format("-0000-4000-8000-%012x", n) .. post)
end

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
