-- wrk script for bench/tlog.sh: POST /api/conductor/evidence/receipt.
--
--   wrk -t T -c C -d D -s bench/tlog.lua URL -- POOL_FILE THREADS TOKEN
--
-- POOL_FILE holds one pre-signed receipt per line (bench/gen_receipts.py). Thread k of THREADS
-- sends lines k, k+THREADS, ... once each; a thread that runs out starts over (repeats are
-- answered 409 RECEIPT_REPLAYED and counted as such). done() prints "RESULT key=value" lines.

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
   local token = args[3]
   local path = wrk.path
   reqs = {}
   local i = 0
   for line in io.lines(file) do
      if i % nthreads == tid then
         reqs[#reqs + 1] = wrk.format("POST", path, {
            ["Content-Type"] = "application/json",
            ["Authorization"] = "Bearer " .. token,
         }, line)
      end
      i = i + 1
   end
   n = #reqs
   idx = 0
   wraps = 0
   created, replayed, stale, other = 0, 0, 0, 0
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
   if status == 201 then
      created = created + 1
   elseif status == 409 then
      replayed = replayed + 1
   else
      if status == 422 and body and body:find("RECEIPT_STALE", 1, true) then
         stale = stale + 1
      else
         other = other + 1
      end
      if first_error == "" then
         first_error = tostring(status) .. " " .. (body or ""):sub(1, 300):gsub("%s+", " ")
      end
   end
end

function done(summary, latency, requests)
   local t = {}
   local keys = { "n", "wraps", "created", "replayed", "stale", "other" }
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
   out("created_per_s", string.format("%.1f", t.created / secs))
   out("lat_mean_ms", string.format("%.3f", latency.mean / 1000))
   out("lat_p50_ms", string.format("%.3f", latency:percentile(50) / 1000))
   out("lat_p90_ms", string.format("%.3f", latency:percentile(90) / 1000))
   out("lat_p99_ms", string.format("%.3f", latency:percentile(99) / 1000))
   out("lat_p999_ms", string.format("%.3f", latency:percentile(99.9) / 1000))
   out("lat_max_ms", string.format("%.3f", latency.max / 1000))
   out("err_connect", e.connect)
   out("err_read", e.read)
   out("err_write", e.write)
   out("err_timeout", e.timeout)
   out("pool", t.n)
   out("pool_wraps", t.wraps)
   out("status_201", t.created)
   out("status_409", t.replayed)
   out("status_422_stale", t.stale)
   out("status_other", t.other)
   out("first_error", first_error == "" and "-" or first_error)
end
