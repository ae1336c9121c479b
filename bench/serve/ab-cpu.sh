#!/bin/bash
# Interleaved A/B of server CPU per request: `mlship serve` from a git revision (A, default main) and from this
# work tree (B), plus the bare node:http floor, all alive at once; per repetition and client level each server gets
# the same wrk load in turn (one-row REST JSON infer, golden row 0), and its CPU per request is read from
# /proc/<pid>/task/*/stat (all threads: main, onnx workers, V8 helpers). Robust to a busy machine in a way that
# back-to-back runs are not: A and B see the same load within seconds of each other.
#
#   bash bench/serve/ab-cpu.sh [REV]                     # GBDT, levels 1 8 64, 3 repetitions of 4 s
#   MODEL=mlp REPS=5 SECS=5 bash bench/serve/ab-cpu.sh main
#   A_ARGS="" B_ARGS="--max-batch-size 1" A_REV=worktree bash bench/serve/ab-cpu.sh   # batching on vs off, same code
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
REV=${1:-${A_REV:-main}}
MODEL=${MODEL:-gbdt}; LEVELS=${LEVELS:-"1 8 64"}; REPS=${REPS:-3}; SECS=${SECS:-4}
case $MODEL in gbdt) FIX=breast-cancer-gbdt ;; mlp) FIX=digits-mlp ;; *) echo "MODEL: gbdt or mlp" >&2; exit 2 ;; esac
NODE=$ROOT/node_modules/.bin/node
BODY=$ROOT/bench/out/serve/body-$MODEL.json
[ -f "$BODY" ] || { echo "run bench/serve/run.ts once first (it writes $BODY)" >&2; exit 2; }
TMP=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT
if [ "$REV" = worktree ]; then A_CLI=$ROOT/src/cli/main.ts; else
  mkdir -p "$TMP/a" && git archive "$REV" src package.json | tar -x -C "$TMP/a" && ln -s "$ROOT/node_modules" "$TMP/a/node_modules"
  A_CLI=$TMP/a/src/cli/main.ts; fi
free_port() { "$NODE" -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
serve() { # var cli port args... — starts a server, records its pid in the parent shell (for cleanup) and in $var
  local var=$1 cli=$2 port=$3; shift 3
  "$NODE" "$cli" serve --model "test/fixtures/models/$FIX:$MODEL" --host 127.0.0.1 --http-port "$port" --grpc-port -1 --log-level warn "$@" > "$TMP/$port.log" 2>&1 &
  PIDS+=($!); printf -v "$var" '%s' "$!"
}
ticks() { # pid -> utime+stime of all its threads
  local t s total=0
  for t in /proc/$1/task/*; do s=$(cat "$t/stat"); s=${s##*) }; set -- $s; total=$((total + ${12} + ${13})); done
  echo $total
}
PA=$(free_port); PB=$(free_port); PF=$(free_port)
serve A "$A_CLI" "$PA" ${A_ARGS:-}; serve B "$ROOT/src/cli/main.ts" "$PB" ${B_ARGS:-}
"$NODE" bench/serve/http-floor.ts "$PF" 127.0.0.1 > /dev/null 2>&1 & F=$!; PIDS+=($F)
for p in $PA $PB; do for i in $(seq 1 300); do curl -sf "http://127.0.0.1:$p/v2/models/$MODEL/ready" > /dev/null && break; sleep 0.2; done; done
echo "A = $REV ${A_ARGS:-}; B = work tree ${B_ARGS:-}; model $MODEL; $SECS s per cell; server CPU µs per request (all threads)"
printf "%-6s %-8s %-4s %10s %12s\n" server clients rep requests "CPU µs/req"
for rep in $(seq 1 "$REPS"); do for c in $LEVELS; do for s in A:$A:$PA B:$B:$PB floor:$F:$PF; do
  IFS=: read -r name pid port <<< "$s"
  url=http://127.0.0.1:$port/v2/models/$MODEL/infer
  wrk -t1 -c"$c" -d1s -s bench/serve/post.lua "$url" -- "$BODY" > /dev/null
  t0=$(ticks "$pid")
  n=$(wrk -t1 -c"$c" -d"${SECS}s" -s bench/serve/post.lua "$url" -- "$BODY" | sed -n 's/^WRK_JSON .*"requests":\([0-9]*\).*/\1/p')
  t1=$(ticks "$pid")
  printf "%-6s %-8s %-4s %10s %12.1f\n" "$name" "$c" "$rep" "$n" "$(echo "($t1 - $t0) * 10000 / $n" | bc -l)"
done; done; done
