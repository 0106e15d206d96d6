-- Wraps one of scripts/wrk/*.lua (named by WRK_SCRIPT, an absolute path) and adds a done() that
-- prints one machine-readable line for scripts/bench/compare.py:
--   BENCH requests=.. duration_us=.. non2xx=.. errors=.. p50=.. p99=.. p999=.. max=..  (latency in µs)
--
--   WRK_SCRIPT=$PWD/scripts/wrk/get.lua wrk -t1 -c64 -d10s -s scripts/bench/report.lua http://127.0.0.1:8080

dofile(assert(os.getenv("WRK_SCRIPT"), "set WRK_SCRIPT to the wrk script to run"))

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d non2xx=%d errors=%d p50=%d p99=%d p999=%d max=%d\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
