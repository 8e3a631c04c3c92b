-- wrk script for bench/ingest.sh.
--
--   wrk -t T -c C -d D -s bench/ingest.lua URL -- POOL_FILE THREADS [MAX_LINES [DELAY_MS]]
--
-- POOL_FILE holds one pre-signed request per line: "<hex HMAC-SHA256> <json body>"
-- (bench/gen_requests.py). Thread k of THREADS sends lines k, k+THREADS, k+2*THREADS, ... in
-- order, each once, so no two requests carry the same body; if a thread runs out it starts
-- over (those repeats would be answered "duplicate": true and are counted as such). The
-- request path is the URL's path; the signature goes in X-IntelGraph-Signature.
--
-- DELAY_MS is for the paced copy of this script that ingest.sh writes (this file plus a
-- `delay()` returning it: each connection waits DELAY_MS before each request, so C connections
-- send about C / (DELAY_MS + latency) requests per millisecond). It is not defined here because
-- wrk takes a slower path for every request once a script has `delay()`.
--
-- response() classifies every answer: 200 with "duplicate":false (stored), 200 with
-- "duplicate":true, other statuses (counted, the first one's body kept). done() prints
-- machine-readable "RESULT key=value" lines that ingest.sh parses.

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("tid", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

function init(args)
   local file = args[1]
   local nthreads = tonumber(args[2] or "1")
   local max_lines = tonumber(args[3] or "0")
   pause_ms = tonumber(args[4] or "0")
   local path = wrk.path
   reqs = {}
   local i = 0
   for line in io.lines(file) do
      if max_lines > 0 and i >= max_lines then break end
      if i % nthreads == tid then
         local sp = line:find(" ", 1, true)
         local sig = line:sub(1, sp - 1)
         local body = line:sub(sp + 1)
         reqs[#reqs + 1] = wrk.format("POST", path, {
            ["Content-Type"] = "application/json",
            ["X-IntelGraph-Signature"] = sig,
         }, body)
      end
      i = i + 1
   end
   n = #reqs
   idx = 0
   wraps = 0
   stored, dups, other200, non200, s429, s503, s5xx = 0, 0, 0, 0, 0, 0, 0
   first_error = ""
end

function request()
   idx = idx + 1
   if idx > n then
      idx = 1
      wraps = wraps + 1
   end
   return reqs[idx]
end

function response(status, headers, body)
   if status == 200 then
      if body:find('"duplicate":false', 1, true) then
         stored = stored + 1
      elseif body:find('"duplicate":true', 1, true) then
         dups = dups + 1
      else
         other200 = other200 + 1
      end
   else
      non200 = non200 + 1
      if status == 429 then s429 = s429 + 1 end
      if status == 503 then s503 = s503 + 1 end
      if status >= 500 then s5xx = s5xx + 1 end
      if first_error == "" then
         first_error = tostring(status) .. " " .. (body or ""):sub(1, 300):gsub("%s+", " ")
      end
   end
end

function done(summary, latency, requests)
   local t = {}
   local keys = { "n", "wraps", "stored", "dups", "other200", "non200", "s429", "s503", "s5xx" }
   for _, k in ipairs(keys) do t[k] = 0 end
   local first_error = ""
   for _, thread in ipairs(threads) do
      for _, k in ipairs(keys) do t[k] = t[k] + (thread:get(k) or 0) end
      local fe = thread:get("first_error")
      if first_error == "" and fe and fe ~= "" then first_error = fe end
   end
   local secs = summary.duration / 1e6
   local e = summary.errors
   local function out(k, v) io.write(string.format("RESULT %s=%s\n", k, tostring(v))) end
   out("requests", summary.requests)
   out("duration_s", string.format("%.3f", secs))
   out("rps", string.format("%.1f", summary.requests / secs))
   out("bytes_read", summary.bytes)
   out("lat_mean_ms", string.format("%.3f", latency.mean / 1000))
   out("lat_stdev_ms", string.format("%.3f", latency.stdev / 1000))
   out("lat_p50_ms", string.format("%.3f", latency:percentile(50) / 1000))
   out("lat_p90_ms", string.format("%.3f", latency:percentile(90) / 1000))
   out("lat_p99_ms", string.format("%.3f", latency:percentile(99) / 1000))
   out("lat_p999_ms", string.format("%.3f", latency:percentile(99.9) / 1000))
   out("lat_max_ms", string.format("%.3f", latency.max / 1000))
   out("err_connect", e.connect)
   out("err_read", e.read)
   out("err_write", e.write)
   out("err_timeout", e.timeout)
   out("err_status", e.status)
   out("pool", t.n)
   out("pool_wraps", t.wraps)
   out("ok_stored", t.stored)
   out("ok_duplicate", t.dups)
   out("ok_other", t.other200)
   out("non200", t.non200)
   out("status_429", t.s429)
   out("status_503", t.s503)
   out("status_5xx", t.s5xx)
   out("first_error", first_error == "" and "-" or first_error)
end
