#!/usr/bin/env bash
# The metering plugin's cost per request, counted rather than timed (this kind of machine's speed
# moves by 2x between minutes): the server of bench:middleware under callgrind with its cache and
# branch simulation, N requests to the plain app, then N to the metered app, and again (ROUNDS).
# Prints per request: instructions, L1 instruction and data misses, mispredicted
# branches, and an estimate of cycles (instructions / 3 + 12 per L1 miss + 15 per mispredicted
# branch). That estimate matched the CPU time bench:middleware measured; the instruction count
# alone understated the overhead by almost half (README, "Overhead"). Two runs of the same code
# differed by ~0.5 % in the ratio: smaller changes need several runs each.
#
#   scripts/cost-middleware.sh [N=10000]     (WARMUP=30000 requests to each app first)
#   APPS=plain,hook,metered,metered-default,logged scripts/cost-middleware.sh
#       also counts the floor of any plugin like this one, a no-op onRequest hook, the plugin
#       without registeredFirst, and fastify's request logging (BENCH_APPS in bench-middleware.ts).
#   ROUNDS=2 (default): each app is counted in that many windows, and its lowest one is its cost.
#
# Needs valgrind (apt-get install valgrind). Takes ~10 minutes for two apps. A window in which V8
# runs a major GC counts thousands more per request in any app, and a GC only ever adds: so each
# app's cost is its lowest window, and an app whose windows differ by over 2 % is flagged (run
# again if its lowest window looks off too). Forcing a GC before each window (--expose-gc) was
# worse: every app then counted 50 % more or worse (code the collection let go recompiled, it seems).
set -euo pipefail
N=${1:-10000}
WARMUP=${WARMUP:-30000}
APPS=${APPS:-plain,metered}
ROUNDS=${ROUNDS:-2}
IFS=, read -ra APP <<<"$APPS"
[[ ${APP[0]} == plain ]] || { echo "cost-middleware: APPS must start with plain" >&2; exit 1; }
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "cost-middleware: needs valgrind (apt-get install valgrind)" >&2; exit 1; }
NODE=$(readlink -f node_modules/.bin/node)
OUT=$(mktemp -d)
[[ -n "${KEEP:-}" ]] && echo "cost-middleware: keeping $OUT" >&2
PORT=$((10000 + RANDOM % 10000)) # below Linux's ephemeral port range
trap 'kill $VPID 2>/dev/null || true; [[ -n "${KEEP:-}" ]] || rm -rf "$OUT"' EXIT
BENCH_APPS=$APPS valgrind --tool=callgrind --cache-sim=yes --branch-sim=yes --instr-atstart=no --smc-check=all-non-file \
  --callgrind-out-file="$OUT/cg.out" "$NODE" scripts/bench-middleware.ts --serve $PORT >"$OUT/server.log" 2>&1 &
VPID=$!
load() { # url amount
  "$NODE" --input-type=module -e "
    import autocannon from 'autocannon';
    const r = await autocannon({ url: '$1/hello', connections: 10, amount: $2, timeout: 60, headers: { 'x-user': 'user-1' } });
    if (r.non2xx + r.errors > 0) { console.error('cost-middleware: ' + (r.non2xx + r.errors) + ' failed requests'); process.exit(1); }"
}
url() { echo "http://127.0.0.1:$((PORT + $1))"; } # the app's number in APPS
echo "cost-middleware: starting the server under valgrind…" >&2
for _ in $(seq 1 180); do curl -sf -o /dev/null "$(url 0)/hello" && break; sleep 1; done
echo "cost-middleware: warming up each app ($APPS, $WARMUP requests each)…" >&2
for i in "${!APP[@]}"; do load "$(url "$i")" "$WARMUP"; done
for round in $(seq 1 "$ROUNDS"); do for i in "${!APP[@]}"; do
  phase=${APP[$i]}
  url=$(url "$i")
  echo "cost-middleware: round $round of $ROUNDS, counting $N requests to the $phase app…" >&2
  callgrind_control -i on $VPID >/dev/null 2>&1
  load "$url" "$N"
  callgrind_control -i off $VPID >/dev/null 2>&1
  callgrind_control -d "$phase" $VPID >/dev/null 2>&1
  sleep 1
done; done
kill $VPID
wait $VPID 2>/dev/null || true
for f in $(ls -tr "$OUT"/cg.out.*); do
  report=$(callgrind_annotate "$f" 2>/dev/null || true)
  echo "$(sed -n 's/^Trigger: dump //p' <<<"$report") $(grep -m1 'PROGRAM TOTALS' <<<"$report")"
done | awk -v n="$N" '
  {
    # Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw Bc Bcm Bi Bim, each printed as "count (pct)"
    k = 0
    for (i = 2; i <= NF; i++) if ($i ~ /^[0-9,]+$/) { gsub(",", "", $i); v[++k] = $i / n }
    cyc = v[1] / 3 + 12 * (v[4] + v[5] + v[6]) + 15 * (v[11] + v[13])
    printf "%-12s instructions %7.0f | L1i misses %5.0f | L1d misses %5.0f | mispredicted %4.0f | est. cycles %7.0f\n", $1, v[1], v[4], v[5] + v[6], v[11] + v[13], cyc
    if (!($1 in low) || cyc < low[$1]) low[$1] = cyc
    if (!($1 in high) || cyc > high[$1]) high[$1] = cyc
    if (!($1 in seen)) { seen[$1] = 1; order[++apps] = $1 }
  }
  END {
    if (!("plain" in low) || apps < 2) exit 1
    p = low["plain"]
    for (i = 1; i <= apps; i++) {
      a = order[i]
      if (a != "plain") printf "%s/plain (est. cycles, lowest window of each): %.3f\n", a, low[a] / p
      if (high[a] - low[a] > 0.02 * p) printf "  %s: its windows differ by %.0f (a major GC fell in one); if its lowest looks off too, run again\n", a, high[a] - low[a]
    }
  }'
