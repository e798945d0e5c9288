#!/usr/bin/env bash
# The benchmark of guard (make bench): one command that builds what it needs,
# installs hyperfine if missing, and prints two tables.
#
#  1. Wrapper overhead: `guard run --lock L -- true` against `flock -n L true`
#     (util-linux) and two Go floors built from bench/floor: "floor" links
#     only gofrs/flock and x/sys/unix; "floor+deps" is the same program that
#     also links (blank imports) every package guard's own packages import,
#     so it pays the same dependency init and binary size: guard cannot go
#     under it. Medians of hyperfine runs, taken in many short rounds so that
#     drift on a shared machine hits every command alike.
#     Goals: guard <= 2.0x flock(1), <= 1.1x floor+deps.
#  2. Take-over latency: from a holder's release to the waiter's job start
#     (bench/wakegap). Goal: guard <= 1.2x flock(1).
#
# usage: scripts/bench.sh [GUARD_BINARY]     (default bin/guard)
# env:   ROUNDS (10) RUNS per round (40) WAKE_N (150) WAKE_POLL
#        (10ms:60,100ms:30,1s:12) BENCH_KEEP=DIR keeps the raw JSON there.
# It takes about a minute; compare ratios within one run, not across runs.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
guard=$(realpath "${1:-$root/bin/guard}")
rounds=${ROUNDS:-10}
runs=${RUNS:-40}
cd "$root"

[ -x "$guard" ] || { echo "bench: $guard: no such binary (run make build)" >&2; exit 1; }
if ! command -v hyperfine >/dev/null; then
	echo "bench: installing hyperfine" >&2
	apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q hyperfine >&2
fi
for c in flock python3 go; do
	command -v "$c" >/dev/null || { echo "bench: $c is missing" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/guard-bench.XXXXXX) # 0700: a safe lock directory for guard
trap 'rm -rf "$tmp"' EXIT

# Build the bench programs the way the Makefile builds guard.
build() { CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' "$@"; }
build -o "$tmp/floor" ./bench/floor
build -o "$tmp/stamp" ./bench/stamp
build -o "$tmp/wakegap" ./bench/wakegap
# floor+deps: bench/floor plus a blank import of every package that guard's
# own packages (those linked into cmd/guard) import, added through an overlay
# so the tree is not touched.
{
	echo "package main"
	echo "import ("
	go list -deps -f '{{if and .Module (eq .Module.Path "guard")}}{{join .Imports "\n"}}{{end}}' ./cmd/guard |
		grep -v -e '^guard/' -e '^guard$' -e '^C$' | sort -u | sed 's/.*/\t_ "&"/'
	echo ")"
} >"$tmp/deps_gen.go"
printf '{"Replace":{"%s":"%s"}}\n' "$root/bench/floor/zz_deps_gen.go" "$tmp/deps_gen.go" >"$tmp/overlay.json"
build -overlay "$tmp/overlay.json" -o "$tmp/floor-deps" ./bench/floor

echo "# guard benchmark"
echo
echo "- guard: \`$("$guard" version 2>&1)\`, $(stat -c %s "$guard") bytes"
echo "- machine: $(nproc) cores, $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- modules linked into guard: $(go version -m "$guard" | awk '$1=="dep"{printf "%s%s", s, $2; s=", "}')"
echo "- floor $(stat -c %s "$tmp/floor") bytes, floor+deps $(stat -c %s "$tmp/floor-deps") bytes ($(grep -c '_ "' "$tmp/deps_gen.go") packages imported)"
echo "- $("$(command -v hyperfine)" --version), $(flock --version | head -1)"
echo

# 1. Wrapper overhead.
mkdir -m 700 "$tmp/o"
for r in $(seq "$rounds"); do
	hyperfine -N --style none --warmup 5 --runs "$runs" --export-json "$tmp/overhead$r.json" \
		-n guard "$guard run --lock $tmp/o/guard.lock -- true" \
		-n flock "flock -n $tmp/o/flock.lock true" \
		-n floor "$tmp/floor $tmp/o/floor.lock true" \
		-n floor+deps "$tmp/floor-deps $tmp/o/floordeps.lock true" \
		-n "guard version" "$guard version" \
		-n true "true" >/dev/null 2>"$tmp/hyperfine.err" || { cat "$tmp/hyperfine.err" >&2; exit 1; }
done
echo "## 1. Wrapper overhead: run \`true\` under a free lock"
echo
python3 - "$tmp" "$rounds" <<'EOF'
import json, statistics, sys
tmp, rounds = sys.argv[1], int(sys.argv[2])
times = {}
for r in range(1, rounds + 1):
    for res in json.load(open(f"{tmp}/overhead{r}.json"))["results"]:
        times.setdefault(res["command"], []).extend(res["times"])
med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
def p(v, q):
    s = sorted(v); return s[min(len(s) - 1, int(q * len(s)))] * 1e3
rows = [("guard", "guard run --lock L -- true"), ("flock", "flock -n L true"),
        ("floor", "bench/floor L true (gofrs/flock + x/sys only)"),
        ("floor+deps", "bench/floor + every package guard imports"),
        ("guard version", "guard version (start-up and exit only)"), ("true", "true (the job alone)")]
print("| command | median ms | p90 ms | above `true` ms | guard / this |")
print("|---|--:|--:|--:|--:|")
for k, label in rows:
    print(f"| {label} | {med[k]:.3f} | {p(times[k], .9):.3f} | {med[k] - med['true']:.3f} | {med['guard'] / med[k]:.2f}x |")
n = len(times["guard"])
g = med["guard"]
print()
print(f"{n} runs of each in {rounds} rounds. guard / flock(1) = {g / med['flock']:.2f}x (goal <= 2.0x: "
      f"{'met' if g / med['flock'] <= 2.0 else 'MISSED'}); guard / floor+deps = {g / med['floor+deps']:.2f}x "
      f"(goal <= 1.1x: {'met' if g / med['floor+deps'] <= 1.1 else 'MISSED'}); guard / floor = {g / med['floor']:.2f}x.")
EOF
echo

# 2. Take-over latency.
echo "## 2. Take-over latency: holder releases -> waiter's job starts"
echo
mkdir -m 700 "$tmp/w"
"$tmp/wakegap" -guard "$guard" -floor "$tmp/floor" -stamp "$tmp/stamp" -dir "$tmp/w" \
	-n "${WAKE_N:-150}" -poll "${WAKE_POLL:-10ms:60,100ms:30,1s:12}"

if [ -n "${BENCH_KEEP:-}" ]; then
	mkdir -p "$BENCH_KEEP" && cp "$tmp"/overhead*.json "$tmp/deps_gen.go" "$BENCH_KEEP"/
fi
