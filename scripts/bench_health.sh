#!/usr/bin/env bash
# Benchmarks guard's health server against bench/bare, a bare net/http
# server on the same kind of mux (and, for /metrics, client_golang's floor:
# a registry with only the Go and process collectors), in one run:
#   - /livez and /healthz requests/s (wrk), goal: guard >= 0.9x bare /livez
#   - the cost of one /metrics scrape: wall time (wrk, one connection) and
#     CPU time (from /proc/PID/stat over 1000 scrapes), vs the floor
#   - peak RSS (VmHWM) of a fresh `guard run --listen` after 1000 scrapes,
#     goal <= 12 MiB
# Servers run on CPU 0 and wrk on CPU 1 (taskset) when there are two CPUs;
# each figure is the best of 3 alternating rounds, as shared machines are
# noisy. Not part of the tests. Takes about a minute; installs wrk if
# missing. Usage: scripts/bench_health.sh [WRK_DURATION (default 3s)]
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-3s}
srvcpu=() cltcpu=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
	srvcpu=(taskset -c 0) cltcpu=(taskset -c 1)
fi

if ! command -v wrk >/dev/null; then
	echo "installing wrk" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wrk >/dev/null
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

for pkg in guard/cmd/guard guard/bench/bare; do
	CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$tmp/${pkg##*/}" "$pkg"
done

# freeport prints a 127.0.0.1 port nothing listens on.
freeport() {
	local p
	while :; do
		p=$((20000 + RANDOM % 20000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
}

# serve KIND PORT starts guard (KIND=guard) or bare and sets $pid once
# /livez answers.
serve() {
	case $1 in
	guard) "${srvcpu[@]}" "$tmp/guard" run --listen "127.0.0.1:$2" --lock "$tmp/bench-$2.lock" -- sleep 3600 2>>"$tmp/serve.log" & ;;
	bare) "${srvcpu[@]}" "$tmp/bare" -listen "127.0.0.1:$2" -metrics & ;;
	esac
	pid=$!
	pids+=("$pid")
	for _ in $(seq 200); do
		curl -sf -o /dev/null "http://127.0.0.1:$2/livez" && return
		sleep 0.05
	done
	echo "$1 did not start on port $2" >&2
	exit 1
}

# rps URL CONNS prints wrk's requests/s; non-2xx answers abort.
rps() {
	local out
	out=$("${cltcpu[@]}" wrk -t1 -c"$2" -d"$dur" "$1")
	if grep -q 'Non-2xx' <<<"$out"; then
		echo "wrk $1: non-2xx answers:" >&2
		echo "$out" >&2
		exit 1
	fi
	awk '/^Requests\/sec/ {print $2}' <<<"$out"
}

best() { printf '%s\n' "$@" | sort -g | tail -1; }

# cputicks PID prints the process's user+system time in clock ticks.
cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# mib FIELD PID prints a /proc/PID/status field (kB) in MiB.
mib() { awk -v f="$1:" '$1 == f {printf "%.1f", $2 / 1024}' "/proc/$2/status"; }

gp=$(freeport)
serve guard "$gp"
bp=$(freeport)
serve bare "$bp"
g="http://127.0.0.1:$gp" b="http://127.0.0.1:$bp"

echo "wrk -t1 -c16 -d$dur, best of 3 rounds, alternating guard and bare ..." >&2
gl=() bl=() gh=() gm=() bm=()
for _ in 1 2 3; do
	gl+=("$(rps "$g/livez" 16)")
	bl+=("$(rps "$b/livez" 16)")
	gh+=("$(rps "$g/healthz" 16)")
	gm+=("$(rps "$g/metrics" 1)")
	bm+=("$(rps "$b/metrics" 1)")
done
gl=$(best "${gl[@]}") bl=$(best "${bl[@]}") gh=$(best "${gh[@]}")
gm=$(best "${gm[@]}") bm=$(best "${bm[@]}")
kill "$pid" 2>/dev/null || true # bare; guard stays until the end

# 1000 sequential scrapes (one keep-alive connection) of fresh processes:
# CPU per scrape, body size and peak RSS.
echo "1000 scrapes of a fresh guard and a fresh bare ..." >&2
scrape1000() {
	local port t0
	port=$(freeport)
	serve "$1" "$port"
	t0=$(cputicks "$pid")
	curl -sf -o /dev/null "http://127.0.0.1:$port/metrics?[1-1000]"
	cpu=$(awk -v a="$t0" -v b="$(cputicks "$pid")" -v hz="$(getconf CLK_TCK)" \
		'BEGIN {printf "%.0f", (b - a) / hz * 1e6 / 1000}')
	size=$(curl -sf "http://127.0.0.1:$port/metrics" | wc -c)
	rss=$(mib VmHWM "$pid") anon=$(mib RssAnon "$pid")
	kill "$pid"
}
scrape1000 guard
gc=$cpu gs=$size gr=$rss ga=$anon
scrape1000 bare
bc=$cpu bs=$size br=$rss ba=$anon

row() { printf '%-36s %12s %12s %8s  %s\n' "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2fx", a / b}'; }
us() { awk -v r="$1" 'BEGIN {printf "%.0f", 1e6 / r}'; }
echo
row "measure" "guard" "bare" "ratio" "goal"
row "/livez req/s (16 conns)" "$gl" "$bl" "$(ratio "$gl" "$bl")" ">= 0.90x"
row "/healthz req/s vs bare /livez" "$gh" "$bl" "$(ratio "$gh" "$bl")" "(JSON body)"
row "/metrics wall us/scrape (1 conn)" "$(us "$gm")" "$(us "$bm")" "$(ratio "$(us "$gm")" "$(us "$bm")")" "vs client_golang floor"
row "/metrics CPU us/scrape (1000)" "$gc" "$bc" "$(ratio "$gc" "$bc")" "vs client_golang floor"
row "/metrics body bytes" "$gs" "$bs" "$(ratio "$gs" "$bs")" ""
row "peak RSS MiB after 1000 scrapes" "$gr" "$br" "$(ratio "$gr" "$br")" "guard <= 12 MiB"
row "  of which anonymous now, MiB" "$ga" "$ba" "$(ratio "$ga" "$ba")" "(the rest: mapped binary)"
awk -v a="$gl" -v b="$bl" -v r="$gr" 'BEGIN {
	if (a / b < 0.9) print "WARN: /livez below 0.9x the bare handler"
	if (r > 12) print "WARN: peak RSS above 12 MiB"
}'
