-- wrk script for bench/serve: POST one fixed body on every keep-alive connection and print a one-line JSON
-- summary (exact percentiles from wrk's 1 µs histogram) for run.ts to parse. With a second argument the body is
-- binary (Triton's binary tensor extension): that many leading bytes are the JSON header.
--   wrk -t1 -c64 -d8s --timeout 10s -s bench/serve/post.lua URL -- body.json
--   wrk -t1 -c64 -d8s --timeout 10s -s bench/serve/post.lua URL -- body.bin 123

function init(args)
  local f = assert(io.open(args[1], "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.method = "POST"
  if args[2] then
    wrk.headers["Content-Type"] = "application/octet-stream"
    wrk.headers["Inference-Header-Content-Length"] = args[2]
  else
    wrk.headers["Content-Type"] = "application/json"
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,"connect":%.0f,"read":%.0f,' ..
    '"write":%.0f,"status":%.0f,"timeout":%.0f,"p50_us":%.0f,"p90_us":%.0f,"p99_us":%.0f,' ..
    '"p999_us":%.0f,"max_us":%.0f,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
