-- wrk (Debian's package) script for bench/lib/harness.py: one kind of request, closed loop or
-- paced to a fixed rate, and a one-line JSON summary the harness parses.
--
-- Environment (set by harness.py's Wrk.run; headers come as wrk -H arguments):
--   BENCH_WRK_METHOD     the request method
--   BENCH_WRK_BODY_FILE  a file holding the request body (absent: no body)
--   BENCH_WRK_RATE       requests per second over all threads (absent: closed loop); a paced run
--                        has one connection per thread (harness.py passes -t equal to -c)
--   BENCH_WRK_THREADS    wrk's -t, to split the rate between threads
local ffi = require("ffi")

wrk.method = os.getenv("BENCH_WRK_METHOD") or "GET"
local body_file = os.getenv("BENCH_WRK_BODY_FILE")
if body_file and body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  wrk.body = f:read("*a")
  f:close()
end

local rate = tonumber(os.getenv("BENCH_WRK_RATE") or "")
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

if rate then
  -- Paced: every thread (one connection each) sends on its own fixed schedule, one request every
  -- threads/rate seconds. A request that is due while its connection still waits for the previous
  -- answer goes out late, and its latency is measured from when it was due: a stall is not hidden
  -- by the requests it kept from being sent (no coordinated omission). A request whose connection
  -- was free in time is measured from when it went out (wrk's timers have millisecond steps, which
  -- are the generator's, not the server's). wrk's own histogram always times from the send, so
  -- paced runs report these latencies instead.
  ffi.cdef([[
    typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
    int clock_gettime(int clock_id, bench_timespec *tp);
  ]])
  local ts = ffi.new("bench_timespec")
  local function now_us()
    ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
  end
  local interval_us = tonumber(os.getenv("BENCH_WRK_THREADS") or "1") * 1e6 / rate
  local next_due_us = nil
  local start_us = nil
  local request_bytes = nil
  -- Read by done() through thread:get.
  latencies_us = {}

  function init(args)
    request_bytes = wrk.format()
  end

  function delay()
    local now = now_us()
    -- Threads start a random part of an interval apart, so their schedules interleave.
    next_due_us = next_due_us or (now + math.random() * interval_us)
    local due = next_due_us
    next_due_us = next_due_us + interval_us
    if due <= now then
      start_us = due
      return 0
    end
    start_us = nil
    return math.floor((due - now) / 1000 + 0.5)
  end

  function request()
    start_us = start_us or now_us()
    return request_bytes
  end

  function response(status, headers, body)
    latencies_us[#latencies_us + 1] = now_us() - start_us
    start_us = nil
  end
end

-- The value at percentile p (nearest rank) of an ascending list.
local function percentile(sorted, p)
  if #sorted == 0 then
    return 0
  end
  local rank = math.max(1, math.ceil(p / 100 * #sorted))
  return sorted[rank]
end

function done(summary, latency, requests)
  local p50, p90, p99, p999, mean, max
  if rate then
    local all = {}
    local sum = 0
    for _, thread in ipairs(threads) do
      for _, v in ipairs(thread:get("latencies_us") or {}) do
        all[#all + 1] = v
        sum = sum + v
      end
    end
    table.sort(all)
    p50, p90, p99, p999 = percentile(all, 50), percentile(all, 90), percentile(all, 99), percentile(all, 99.9)
    mean = #all > 0 and sum / #all or 0
    max = all[#all] or 0
  else
    p50, p90, p99, p999 = latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)
    mean, max = latency.mean, latency.max
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH-WRK {"duration_us":%d,"requests":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,'
      .. '"status":%d,"timeout":%d,"p50_us":%.1f,"p90_us":%.1f,"p99_us":%.1f,"p999_us":%.1f,"mean_us":%.3f,"max_us":%.1f}\n',
    summary.duration, summary.requests, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    p50, p90, p99, p999, mean, max
  ))
end
