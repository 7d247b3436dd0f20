#!/usr/bin/env bash
# The metering plugin's cost per request, counted rather than timed (this kind of machine's speed
# moves by 2x between minutes): the server of bench:middleware under callgrind with its cache and
# branch simulation, N requests to the plain app, then N to the metered app, then N to the plain
# app again. Prints per request: instructions, L1 instruction and data misses, mispredicted
# branches, and an estimate of cycles (instructions / 3 + 12 per L1 miss + 15 per mispredicted
# branch). That estimate matched the CPU time bench:middleware measured; the instruction count
# alone understated the overhead by almost half (README, "Overhead"). Two runs of the same code
# differed by ~0.5 % in the ratio: smaller changes need several runs each.
#
#   scripts/cost-middleware.sh [N=10000]     (WARMUP=30000 requests to each app first)
#
# Needs valgrind (apt-get install valgrind). Takes ~10 minutes. A window in which V8 runs a
# major GC counts thousands more per request in either app: the ratio is taken against the lower
# plain window, and a gap of over 2 % between the two is reported (run again if the metered window
# looks off too).
set -euo pipefail
N=${1:-10000}
WARMUP=${WARMUP:-30000}
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "cost-middleware: needs valgrind (apt-get install valgrind)" >&2; exit 1; }
NODE=$(readlink -f node_modules/.bin/node)
OUT=$(mktemp -d)
[[ -n "${KEEP:-}" ]] && echo "cost-middleware: keeping $OUT" >&2
PORT=$((10000 + RANDOM % 10000)) # below Linux's ephemeral port range
trap 'kill $VPID 2>/dev/null || true; [[ -n "${KEEP:-}" ]] || rm -rf "$OUT"' EXIT
valgrind --tool=callgrind --cache-sim=yes --branch-sim=yes --instr-atstart=no --smc-check=all-non-file \
  --callgrind-out-file="$OUT/cg.out" "$NODE" scripts/bench-middleware.ts --serve $PORT >"$OUT/server.log" 2>&1 &
VPID=$!
load() { # url amount
  "$NODE" --input-type=module -e "
    import autocannon from 'autocannon';
    const r = await autocannon({ url: '$1/hello', connections: 10, amount: $2, timeout: 60, headers: { 'x-user': 'user-1' } });
    if (r.non2xx + r.errors > 0) { console.error('cost-middleware: ' + (r.non2xx + r.errors) + ' failed requests'); process.exit(1); }"
}
PLAIN=http://127.0.0.1:$PORT
METERED=http://127.0.0.1:$((PORT + 1))
echo "cost-middleware: starting the server under valgrind…" >&2
for _ in $(seq 1 180); do curl -sf -o /dev/null "$METERED/hello" && break; sleep 1; done
echo "cost-middleware: warming up both apps ($WARMUP requests each)…" >&2
load "$PLAIN" "$WARMUP"
load "$METERED" "$WARMUP"
for phase in plain metered plain-again; do
  url=$PLAIN
  [[ $phase == metered ]] && url=$METERED
  echo "cost-middleware: counting $N requests to the $phase app…" >&2
  callgrind_control -i on $VPID >/dev/null 2>&1
  load "$url" "$N"
  callgrind_control -i off $VPID >/dev/null 2>&1
  callgrind_control -d "$phase" $VPID >/dev/null 2>&1
  sleep 1
done
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
    c[NR] = cyc
  }
  END {
    if (NR < 3) exit 1
    # A major GC only ever adds: the lower plain window is the cost of the plain app.
    p = c[1] < c[3] ? c[1] : c[3]
    printf "metered/plain (est. cycles, against the lower plain window): %.3f\n", c[2] / p
    if (c[1] - c[3] > 0.02 * p || c[3] - c[1] > 0.02 * p) printf "the plain windows differ by %.0f: a major GC fell in one; if the metered window is far off too, run again\n", c[3] - c[1]
  }'
