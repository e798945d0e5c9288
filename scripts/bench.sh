#!/usr/bin/env bash
# The benchmark of guard (make bench): one command that installs what it
# needs (hyperfine, wrk, daemonize, curl, util-linux from Debian, if
# missing), builds the programs in bench/, measures guard against its peers
# and prints ONE table on stdout: each figure for guard, the peer, and
# guard / peer, medians over many runs. Then the Go micro-benchmarks.
# Progress and each figure's detailed table go to stderr.
#
#  1. Wrapper overhead: `guard run --lock L -- true` vs `flock -n L true` and
#     the Go floors (bench/floor: gofrs/flock + os/exec; floor+deps: the same
#     linking every package guard imports). hyperfine, many short rounds.
#     Goals: <= 2.0x flock(1), <= 1.1x floor+deps.
#  2. Take-over latency: holder releases -> the waiter's job starts
#     (bench/wakegap). guard --wait vs flock(1) blocking and gofrs
#     TryLockContext polling. Goal: <= 1.2x flock(1).
#  3. Contention at scale: N (1000) contenders released at once on one lock
#     (bench/contend); time until every loser exited, the winner's job start,
#     all exited; checks exactly one job ran. guard vs flock(1).
#  4. Daemon start: `guard run --detach` vs daemonize and start-stop-daemon
#     (bench/dstart): invocation -> starter's exit, -> daemon's exec, and
#     whether the daemon runs when the starter exits (guard's exit includes
#     its readiness guarantee: lock held and job started; the others' not).
#  5. Health: /livez, /healthz req/s (wrk) vs a bare net/http server
#     (bench/bare), goal >= 0.9x; /metrics scrape wall and CPU time vs the
#     client_golang floor. Servers on CPU 0, wrk on CPU 1.
#  6. Memory: peak RSS (VmHWM) of guard run supervising sleep, without and
#     with --listen after SCRAPES scrapes, vs flock(1); goal <= 12 MiB.
#  7. Go micro-benchmarks of ./instance ./pidfile ./health (benchstat input).
#  9. Cron reports: a job writing REPORT_MB (200) MB through
#     `guard run --quiet-success` vs chronic(1) (moreutils): wall time and
#     peak RSS (GNU time). Goals: wall <= 1.0x chronic's; guard's RSS <= 24
#     MiB. And `guard run --ping URL -- true` against a local HTTP server
#     vs `guard run -- true`: the ping's added wall time (a few ms).
#  8. etcd: hand-over (holder's job ends -> standby's job starts) and
#     take-over after SIGKILL of the holder, guard-etcd vs etcdctl lock 3.7.3
#     on one embedded etcd (etcd/bench/handover). Goals: hand-over <= 1.2x
#     etcdctl; take-over <= TTL + 0.6 s. Needs guard-etcd beside guard.
#
# usage: scripts/bench.sh [GUARD_BINARY]     (default bin/guard; run as root)
# env:   FIGURES ("1 2 3 4 5 6 7 8 9")   which figures to run
#        ROUNDS (10) RUNS (40)      1: hyperfine rounds, runs per round
#        WAKE_N (150) WAKE_POLL (10ms:60,100ms:30,1s:12)      2
#        CONTEND_N (1000) CONTEND_ROUNDS (5) CONTEND_HOLD (3s) 3
#        DSTART_ROUNDS (40)                                   4
#        HEALTH_ROUNDS (5) WRK_DURATION (2s)                  5
#        MEM_ROUNDS (5) SCRAPES (1000)                        5, 6
#        MICRO_COUNT (1) MICRO_BENCHTIME (1s)                 7
#        ETCD_N (20) ETCD_KILLS (3)                           8
#        REPORT_ROUNDS (3) REPORT_MB (200) PING_RUNS (50)     9
#        BENCH_KEEP=DIR  keep the raw results (hyperfine JSON, results.tsv,
#                        details.md, micro.txt for benchstat) in DIR
# About 3.5 minutes on 2 cores. Compare ratios within one run, not across runs.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
guard=$(realpath "${1:-$root/bin/guard}")
figures=" ${FIGURES:-1 2 3 4 5 6 7 8 9} "
cd "$root"
want() { [[ $figures == *" $1 "* ]]; }
log() { echo "bench: $*" >&2; }
started=$SECONDS

[ -x "$guard" ] || { log "$guard: no such binary (run make build)"; exit 1; }
command -v go >/dev/null || { log "go is missing"; exit 1; }
[ "$(id -u)" = 0 ] || log "not root: figure 2 loses its exec column, 3 may hit RLIMIT_NPROC, 4 cannot use process events"

# Debian packages, installed when a command is missing.
missing=""
for pc in hyperfine:hyperfine wrk:wrk daemonize:daemonize curl:curl util-linux:flock util-linux:taskset dpkg:start-stop-daemon moreutils:chronic time:/usr/bin/time python3:python3; do
	command -v "${pc#*:}" >/dev/null || PATH=$PATH:/usr/sbin:/sbin command -v "${pc#*:}" >/dev/null ||
		[[ " $missing " == *" ${pc%%:*} "* ]] || missing="$missing ${pc%%:*}"
done
if [ -n "$missing" ]; then
	log "installing:$missing"
	apt-get update -q >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >&2
fi
export PATH=$PATH:/usr/sbin:/sbin

tmp=$(mktemp -d /tmp/guard-bench.XXXXXX) # 0700: a safe lock directory for guard
cleanup() {
	# Only our own background jobs that are still running (jobs -p): never a
	# PID that was already reaped and may have been reused.
	for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ -n "${BENCH_KEEP:-}" ]; then
		mkdir -p "$BENCH_KEEP" && cp -r "$tmp"/*.json "$tmp"/*.tsv "$tmp"/*.md "$tmp"/*.txt "$tmp"/deps_gen.go "$BENCH_KEEP"/ 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
res=$tmp/results.tsv details=$tmp/details.md
: >"$res"
: >"$details"
# detail prints a figure's own table on stderr and keeps it in details.md.
detail() { tee -a "$details" >&2; }

# Build the bench programs the way the Makefile builds guard.
log "building bench/ ..."
build() { CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' "$@"; }
for p in floor stamp wakegap contend dstart bare report; do
	build -o "$tmp/$p" "./bench/$p"
done
# floor+deps: bench/floor plus a blank import of every package that guard's
# own packages (those linked into cmd/guard) import, added through an overlay
# so the tree is not touched.
{
	echo "package main"
	echo "import ("
	go list -deps -f '{{if and .Module (eq .Module.Path "github.com/guardkit/guard")}}{{join .Imports "\n"}}{{end}}' ./cmd/guard |
		grep -v -e '^github.com/guardkit/guard/' -e '^github.com/guardkit/guard$' -e '^C$' | sort -u | sed 's/.*/\t_ "&"/'
	echo ")"
} >"$tmp/deps_gen.go"
printf '{"Replace":{"%s":"%s"}}\n' "$root/bench/floor/zz_deps_gen.go" "$tmp/deps_gen.go" >"$tmp/overlay.json"
build -overlay "$tmp/overlay.json" -o "$tmp/floor-deps" ./bench/floor
median() { "$tmp/report" median "$@"; }

header() {
	echo "# guard benchmark"
	echo
	echo "- guard: \`$("$guard" version 2>&1)\`, $(stat -c %s "$guard") bytes; $(go version)"
	echo "- machine: $(nproc) cores, $(uname -sr), load before $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- peers: $(hyperfine --version), $(flock --version | head -1), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)," \
		"daemonize $(dpkg-query -W -f '${Version}' daemonize 2>/dev/null), start-stop-daemon (dpkg $(dpkg-query -W -f '${Version}' dpkg 2>/dev/null))"
	echo "- floor $(stat -c %s "$tmp/floor") bytes, floor+deps $(stat -c %s "$tmp/floor-deps") bytes ($(grep -c '_ "' "$tmp/deps_gen.go") packages imported)"
}
header >"$tmp/header.md"

# 1. Wrapper overhead.
if want 1; then
	log "1. wrapper overhead (${ROUNDS:-10} rounds of ${RUNS:-40} runs) ..."
	mkdir -m 700 "$tmp/o"
	for r in $(seq "${ROUNDS:-10}"); do
		hyperfine -N --style none --warmup 5 --runs "${RUNS:-40}" --export-json "$tmp/overhead$r.json" \
			-n guard "$guard run --lock $tmp/o/guard.lock -- true" \
			-n flock "flock -n $tmp/o/flock.lock true" \
			-n floor "$tmp/floor $tmp/o/floor.lock true" \
			-n floor+deps "$tmp/floor-deps $tmp/o/floordeps.lock true" \
			-n "guard version" "$guard version" \
			-n true "true" >/dev/null 2>"$tmp/hyperfine.err" || { cat "$tmp/hyperfine.err" >&2; exit 1; }
	done
	{
		echo "## 1. Wrapper overhead: run \`true\` under a free lock"
		echo
		"$tmp/report" hyperfine -tsv "$res" "$tmp"/overhead*.json
		echo
	} | detail
fi

# 2. Take-over latency.
if want 2; then
	log "2. take-over latency ..."
	mkdir -m 700 "$tmp/w"
	{
		echo "## 2. Take-over latency: holder releases -> waiter's job starts"
		echo
		"$tmp/wakegap" -guard "$guard" -floor "$tmp/floor" -stamp "$tmp/stamp" -dir "$tmp/w" -tsv "$res" \
			-n "${WAKE_N:-150}" -poll "${WAKE_POLL:-10ms:60,100ms:30,1s:12}"
		echo
	} | detail
fi

# 3. Contention at scale.
if want 3; then
	log "3. contention: ${CONTEND_N:-1000} contenders, ${CONTEND_ROUNDS:-5} rounds ..."
	mkdir -m 700 "$tmp/c"
	{
		echo "## 3. Contention at scale"
		echo
		"$tmp/contend" -guard "$guard" -floor "$tmp/floor" -floordeps "$tmp/floor-deps" -dir "$tmp/c" -tsv "$res" \
			-n "${CONTEND_N:-1000}" -rounds "${CONTEND_ROUNDS:-5}" -hold "${CONTEND_HOLD:-3s}"
		echo
	} | detail
fi

# 4. Daemon start.
if want 4; then
	log "4. daemon start (${DSTART_ROUNDS:-40} rounds) ..."
	mkdir -m 700 "$tmp/d"
	{
		echo "## 4. Daemon start"
		echo
		"$tmp/dstart" -guard "$guard" -dir "$tmp/d" -tsv "$res" -rounds "${DSTART_ROUNDS:-40}"
		echo
	} | detail
fi

# Servers for 5 and 6: on CPU 0, their clients on CPU 1.
srvcpu=() cltcpu=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
	srvcpu=(taskset -c 0) cltcpu=(taskset -c 1)
fi
mkdir -m 700 "$tmp/h"

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

# serve KIND PORT starts guard run --listen (KIND=guard) or bench/bare and
# sets $pid once /livez answers.
serve() {
	case $1 in
	guard) "${srvcpu[@]}" "$guard" run --listen "127.0.0.1:$2" --lock "$tmp/h/serve-$2.lock" -- sleep 3600 2>>"$tmp/serve.log" & ;;
	bare) "${srvcpu[@]}" "$tmp/bare" -listen "127.0.0.1:$2" -metrics 2>>"$tmp/serve.log" & ;;
	esac
	pid=$!
	for _ in $(seq 400); do
		curl -sf -o /dev/null "http://127.0.0.1:$2/livez" && return
		sleep 0.025
	done
	log "$1 did not start on port $2"
	exit 1
}

# stopserver stops $pid and waits for it.
stopserver() {
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# rps URL CONNS prints wrk's requests/s; non-2xx answers abort.
rps() {
	local out
	out=$("${cltcpu[@]}" wrk -t1 -c"$2" -d"${WRK_DURATION:-2s}" "$1")
	if grep -q 'Non-2xx' <<<"$out"; then
		log "wrk $1: non-2xx answers:"
		echo "$out" >&2
		exit 1
	fi
	awk '/^Requests\/sec/ {print $2}' <<<"$out"
}

# cputicks PID prints the process's user+system time in clock ticks.
cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# mib FIELD PID prints a /proc/PID/status field (kB) in MiB.
mib() { awk -v f="$1:" '$1 == f {printf "%.2f", $2 / 1024}' "/proc/$2/status"; }
put() { printf '%s\t%s\n' "$1" "$2" >>"$res"; }

# 5. Health throughput and /metrics wall time.
if want 5; then
	n=${HEALTH_ROUNDS:-5}
	log "5. health: wrk -t1 -c16 -d${WRK_DURATION:-2s}, $n rounds, guard and bare alternating ..."
	gp=$(freeport)
	serve guard "$gp"
	gpid=$pid
	bp=$(freeport)
	serve bare "$bp"
	bpid=$pid
	g="http://127.0.0.1:$gp" b="http://127.0.0.1:$bp"
	gl=() bl=() gh=() gm=() bm=()
	for _ in $(seq "$n"); do
		gl+=("$(rps "$g/livez" 16)")
		bl+=("$(rps "$b/livez" 16)")
		gh+=("$(rps "$g/healthz" 16)")
		gm+=("$(rps "$g/metrics" 1)")
		bm+=("$(rps "$b/metrics" 1)")
	done
	pid=$gpid stopserver
	pid=$bpid stopserver
	put health.guard.livez_rps "$(median <<<"${gl[*]}")"
	put health.bare.livez_rps "$(median <<<"${bl[*]}")"
	put health.guard.healthz_rps "$(median <<<"${gh[*]}")"
	put health.guard.metrics_wall_us "$(printf '%s\n' "${gm[@]}" | awk '{print 1e6 / $1}' | median | xargs printf '%.0f')"
	put health.bare.metrics_wall_us "$(printf '%s\n' "${bm[@]}" | awk '{print 1e6 / $1}' | median | xargs printf '%.0f')"
	{
		echo "## 5. Health endpoints (wrk req/s, $n rounds; median [all])"
		echo
		echo "| measure | guard | bare net/http / client_golang floor |"
		echo "|---|--:|--:|"
		echo "| /livez, 16 conns | $(median <<<"${gl[*]}") [${gl[*]}] | $(median <<<"${bl[*]}") [${bl[*]}] |"
		echo "| /healthz, 16 conns (bare: /livez) | $(median <<<"${gh[*]}") [${gh[*]}] | |"
		echo "| /metrics, 1 conn | $(median <<<"${gm[*]}") [${gm[*]}] | $(median <<<"${bm[*]}") [${bm[*]}] |"
		echo
	} | detail
fi

# 5 and 6: SCRAPES sequential scrapes (one keep-alive connection) of fresh
# servers: CPU per scrape, body size, peak RSS. "plain" asks for the text
# format without compression (as curl does); "prom" sends Prometheus's own
# scrape headers (OpenMetrics preferred, gzip).
promhdr=(-H 'Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'
	-H 'Accept-Encoding: gzip' -H 'X-Prometheus-Scrape-Timeout-Seconds: 10')
if want 5 || want 6; then
	n=${MEM_ROUNDS:-5} scrapes=${SCRAPES:-1000}
	log "5/6. $scrapes scrapes of fresh guard --listen and bare servers, plain and as Prometheus, $n rounds ..."
	declare -A cpu=() hwm=() idle=() size=()
	for _ in $(seq "$n"); do
		for style in plain prom; do
			hdr=()
			[ "$style" = prom ] && hdr=("${promhdr[@]}")
			for kind in guard bare; do
				port=$(freeport)
				serve "$kind" "$port"
				idle[$kind.$style]+="$(mib VmHWM "$pid") "
				t0=$(cputicks "$pid")
				"${cltcpu[@]}" curl -sf "${hdr[@]}" -o /dev/null "http://127.0.0.1:$port/metrics?[1-$scrapes]"
				cpu[$kind.$style]+="$(awk -v a="$t0" -v b="$(cputicks "$pid")" -v hz="$(getconf CLK_TCK)" -v n="$scrapes" \
					'BEGIN {printf "%.0f", (b - a) / hz * 1e6 / n}') "
				hwm[$kind.$style]+="$(mib VmHWM "$pid") "
				size[$kind.$style]=$(curl -sf "${hdr[@]}" "http://127.0.0.1:$port/metrics" | wc -c)
				stopserver
			done
		done
	done
	put mem.scrapes "$scrapes"
	put health.guard.metrics_cpu_us "$(median <<<"${cpu[guard.plain]}")"
	put health.bare.metrics_cpu_us "$(median <<<"${cpu[bare.plain]}")"
	put health.guard.metrics_gzip_cpu_us "$(median <<<"${cpu[guard.prom]}")"
	put health.bare.metrics_gzip_cpu_us "$(median <<<"${cpu[bare.prom]}")"
	put mem.guard_listen.hwm_mib "$(median <<<"${hwm[guard.plain]}")"
	put mem.bare.hwm_mib "$(median <<<"${hwm[bare.plain]}")"
	put mem.guard_listen.gzip_hwm_mib "$(median <<<"${hwm[guard.prom]}")"
	put mem.bare.gzip_hwm_mib "$(median <<<"${hwm[bare.prom]}")"
	{
		echo "## 5/6. $scrapes scrapes of a fresh server, $n rounds; median [all]"
		echo
		echo "plain: text format, no compression (curl's default); Prometheus: its scrape headers (OpenMetrics, gzip)."
		echo
		echo "| measure | guard run --listen | bare + client_golang floor |"
		echo "|---|--:|--:|"
		for style in plain prom; do
			case $style in plain) sl="plain" ;; prom) sl="Prometheus" ;; esac
			echo "| $sl: /metrics CPU µs per scrape | $(median <<<"${cpu[guard.$style]}") [${cpu[guard.$style]% }] | $(median <<<"${cpu[bare.$style]}") [${cpu[bare.$style]% }] |"
			echo "| $sl: /metrics body bytes (as sent) | ${size[guard.$style]} | ${size[bare.$style]} |"
			echo "| $sl: VmHWM MiB before the scrapes | $(median <<<"${idle[guard.$style]}") [${idle[guard.$style]% }] | $(median <<<"${idle[bare.$style]}") [${idle[bare.$style]% }] |"
			echo "| $sl: VmHWM MiB after the scrapes | $(median <<<"${hwm[guard.$style]}") [${hwm[guard.$style]% }] | $(median <<<"${hwm[bare.$style]}") [${hwm[bare.$style]% }] |"
		done
		echo
	} | detail
fi

# 6. Peak RSS of the supervisor, no --listen: guard run vs flock(1).
if want 6; then
	n=${MEM_ROUNDS:-5}
	log "6. peak RSS of guard run and flock(1) supervising sleep, $n rounds ..."
	declare -A mem=() anon=() file=()
	for _ in $(seq "$n"); do
		for kind in guard flock; do
			case $kind in
			guard) "$guard" run --lock "$tmp/h/mem.lock" -- sleep 3600 2>>"$tmp/serve.log" & ;;
			flock) flock "$tmp/h/mem.lock" sleep 3600 & ;;
			esac
			pid=$!
			job=""
			for _ in $(seq 400); do
				job=$(cat "/proc/$pid"/task/*/children 2>/dev/null | awk '{print $1}')
				[ -n "$job" ] && grep -q '^sleep' "/proc/$job/comm" 2>/dev/null && break
				job=""
				sleep 0.005
			done
			[ -n "$job" ] || { log "$kind did not start its job"; exit 1; }
			sleep 0.3 # a lease check or two
			mem[$kind]+="$(mib VmHWM "$pid") "
			anon[$kind]+="$(mib RssAnon "$pid") " file[$kind]+="$(mib RssFile "$pid") "
			kill "$job"
			wait "$pid" 2>/dev/null || true
		done
	done
	put mem.guard.hwm_mib "$(median <<<"${mem[guard]}")"
	put mem.flock.hwm_mib "$(median <<<"${mem[flock]}")"
	{
		echo "## 6. Peak RSS (VmHWM) of the supervisor while its job (sleep) runs, $n rounds; median [all]"
		echo
		echo "| supervisor | VmHWM MiB | RssAnon MiB | RssFile MiB (binary, libraries) |"
		echo "|---|--:|--:|--:|"
		for k in guard flock; do
			case $k in guard) label="guard run --lock L -- sleep" ;; flock) label="flock L sleep" ;; esac
			echo "| $label | $(median <<<"${mem[$k]}") [${mem[$k]% }] | $(median <<<"${anon[$k]}") | $(median <<<"${file[$k]}") |"
		done
		echo
	} | detail
fi

# 7. Go micro-benchmarks.
if want 7; then
	log "7. go test -bench (count ${MICRO_COUNT:-1}) ..."
	go test -run '^$' -bench . -benchmem -count "${MICRO_COUNT:-1}" -benchtime "${MICRO_BENCHTIME:-1s}" \
		./instance ./pidfile ./health >"$tmp/micro.txt" 2>&1 || { cat "$tmp/micro.txt" >&2; exit 1; }
fi

# 8. etcd hand-over and take-over.
if want 8; then
	log "8. etcd hand-over and take-over ..."
	etcd_guard=$(dirname "$guard")/guard-etcd
	[ -x "$etcd_guard" ] || { log "$etcd_guard: missing (make build builds it)"; exit 1; }
	(cd etcd && build -o "$tmp/handover" ./bench/handover && go build -o "$tmp/etcdctl" go.etcd.io/etcd/etcdctl/v3)
	mkdir -m 700 "$tmp/e"
	{
		echo "## 8. etcd: hand-over and take-over, guard-etcd vs etcdctl lock"
		echo
		"$tmp/handover" -guard "$etcd_guard" -etcdctl "$tmp/etcdctl" -stamp "$tmp/stamp" -dir "$tmp/e" -tsv "$res" \
			-n "${ETCD_N:-20}" -kills "${ETCD_KILLS:-3}"
		echo
	} | detail
fi

# 9. Cron reports: --quiet-success vs chronic(1) on a big output; --ping's cost.
if want 9; then
	n=${REPORT_ROUNDS:-3} mb=${REPORT_MB:-200} pings=${PING_RUNS:-50}
	log "9. $mb MB through guard --quiet-success and chronic, $n rounds; $pings runs with and without --ping ..."
	job="yes 0123456789abcdef | head -c ${mb}000000; exit 1" # a failure: both print head/all
	declare -A wall=() rss=()
	for _ in $(seq "$n"); do
		for kind in guard chronic; do
			case $kind in
			guard) cmd=("$guard" run --lock "$tmp/h/report.lock" --quiet-success -- sh -c "$job") ;;
			chronic) cmd=(chronic sh -c "$job") ;;
			esac
			/usr/bin/time -f '%e %M' -o "$tmp/time.out" "${cmd[@]}" >/dev/null 2>&1 || true
			read -r e m < <(tail -1 "$tmp/time.out") # after "Command exited with non-zero status 1"
			wall[$kind]+="$e " rss[$kind]+="$(awk -v k="$m" 'BEGIN {printf "%.1f", k / 1024}') "
		done
	done
	python3 -c '
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def ok(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"OK")
    do_GET = do_POST = ok
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
' "$(freeport | tee "$tmp/pingport")" &
	pingpid=$!
	for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$(cat "$tmp/pingport")/x" && break; sleep 0.05; done
	declare -A pw=()
	for kind in ping noping; do
		args=()
		[ $kind = ping ] && args=(--ping "http://127.0.0.1:$(cat "$tmp/pingport")/check")
		t0=$(date +%s%N)
		for _ in $(seq "$pings"); do "$guard" run --lock "$tmp/h/ping.lock" "${args[@]}" -- true; done
		pw[$kind]=$(awk -v a="$t0" -v b="$(date +%s%N)" -v n="$pings" 'BEGIN {printf "%.2f", (b - a) / 1e6 / n}')
	done
	kill "$pingpid"
	put report.mb "$mb"
	put report.guard.quiet_wall_s "$(median <<<"${wall[guard]}")"
	put report.chronic.quiet_wall_s "$(median <<<"${wall[chronic]}")"
	put report.guard.quiet_rss_mib "$(median <<<"${rss[guard]}")"
	put report.chronic.quiet_rss_mib "$(median <<<"${rss[chronic]}")"
	put report.guard.ping_wall_ms "${pw[ping]}"
	put report.guard.noping_wall_ms "${pw[noping]}"
	{
		echo "## 9. $mb MB through --quiet-success vs chronic, $n rounds; median [all]; --ping's cost over $pings runs"
		echo
		echo "| measure | guard run --quiet-success | chronic |"
		echo "|---|--:|--:|"
		echo "| wall s | $(median <<<"${wall[guard]}") [${wall[guard]% }] | $(median <<<"${wall[chronic]}") [${wall[chronic]% }] |"
		echo "| peak RSS MiB (GNU time, largest of the process and its children) | $(median <<<"${rss[guard]}") [${rss[guard]% }] | $(median <<<"${rss[chronic]}") [${rss[chronic]% }] |"
		echo
		echo "guard run -- true: ${pw[noping]} ms a run; with --ping to a local server (start and end pings): ${pw[ping]} ms."
		echo
	} | detail
fi

log "done in $((SECONDS - started)) s"
echo "- load after: $(cut -d' ' -f1-3 /proc/loadavg); $((SECONDS - started)) s" >>"$tmp/header.md"
cat "$tmp/header.md"
echo
"$tmp/report" table "$res"
if want 7; then
	echo
	echo "## 7. Go micro-benchmarks (go test -run '^\$' -bench . -benchmem ./instance ./pidfile ./health)"
	echo
	echo '```'
	grep -E '^(goos|goarch|pkg|cpu|Benchmark)' "$tmp/micro.txt"
	echo '```'
	echo
	echo "Compare two builds with benchstat: MICRO_COUNT=10 FIGURES=7 BENCH_KEEP=old make bench, the same"
	echo "with BENCH_KEEP=new after the change, then: go run golang.org/x/perf/cmd/benchstat@latest old/micro.txt new/micro.txt"
fi
