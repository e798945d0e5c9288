package main

import (
	"fmt"
	"strconv"
	"strings"
)

// row is one line of the summary table: a figure for guard against one peer.
type row struct {
	fig, what, unit string
	guard           string // key of guard's value
	peer, peerKey   string // the peer and the key of its value
	goal            string // "" | "<=R" | ">=R" (ratio guard/peer) | "abs<=V" (guard's value)
}

var rows = []row{
	{"1", "wrapper overhead: `run true`, free lock", "ms", "overhead.guard.median_ms",
		"flock -n L true", "overhead.flock.median_ms", "<=2.0"},
	{"1", "", "ms", "overhead.guard.median_ms",
		"Go floor: gofrs/flock + os/exec", "overhead.floor.median_ms", ""},
	{"1", "", "ms", "overhead.guard.median_ms",
		"Go floor + every package guard imports", "overhead.floor+deps.median_ms", "<=1.1"},
	{"2", "take-over: release -> job's first instruction", "µs", "takeover.guard.stamp_us",
		"flock L (blocking flock(2))", "takeover.flock.stamp_us", "<=1.2"},
	{"2", "take-over: release -> job's execve", "µs", "takeover.guard.exec_us",
		"flock L (blocking flock(2))", "takeover.flock.exec_us", ""},
	{"2", "take-over: release -> job's first instruction", "µs", "takeover.guard.stamp_us",
		"gofrs TryLockContext, 10ms poll", "takeover.poll10ms.stamp_us", ""},
	{"2", "", "µs", "takeover.guard.stamp_us",
		"gofrs TryLockContext, 100ms poll", "takeover.poll100ms.stamp_us", ""},
	{"2", "", "µs", "takeover.guard.stamp_us",
		"gofrs TryLockContext, 1s poll", "takeover.poll1s.stamp_us", ""},
	{"3", "contention: gate opens -> all losers exited", "ms", "contend.guard.last_loser_ms",
		"flock -n L", "contend.flock.last_loser_ms", ""},
	{"3", "", "ms", "contend.guard.last_loser_ms",
		"Go floor: gofrs/flock + os/exec", "contend.floor.last_loser_ms", ""},
	{"3", "", "ms", "contend.guard.last_loser_ms",
		"Go floor + every package guard imports", "contend.floordeps.last_loser_ms", ""},
	{"3", "contention: gate opens -> winner's job started", "ms", "contend.guard.job_ms",
		"flock -n L", "contend.flock.job_ms", ""},
	{"3", "contention: gate opens -> all exited (job holds HOLD)", "ms", "contend.guard.total_ms",
		"flock -n L", "contend.flock.total_ms", ""},
	{"3", "contention: exactly one job ran, every round", "", "contend.guard.exactly_one",
		"flock -n L", "contend.flock.exactly_one", ""},
	{"4", "daemon start: invocation -> starter exits (guard's: lock held and job started; the others': forked)", "ms", "dstart.guard.exit_ms",
		"daemonize -p P -l L", "dstart.daemonize.exit_ms", ""},
	{"4", "", "ms", "dstart.guard.exit_ms",
		"start-stop-daemon -S -b -m -p P", "dstart.ssd.exit_ms", ""},
	{"4", "daemon start: invocation -> daemon's execve", "ms", "dstart.guard.exec_ms",
		"daemonize -p P -l L", "dstart.daemonize.exec_ms", ""},
	{"4", "", "ms", "dstart.guard.exec_ms",
		"start-stop-daemon -S -b -m -p P", "dstart.ssd.exec_ms", ""},
	{"4", "daemon start: daemon running when the starter exited", "", "dstart.guard.ready",
		"daemonize -p P -l L", "dstart.daemonize.ready", ""},
	{"4", "", "", "dstart.guard.ready",
		"start-stop-daemon -S -b -m -p P", "dstart.ssd.ready", ""},
	{"5", "health: /livez throughput (16 conns)", "req/s", "health.guard.livez_rps",
		"bare net/http /livez", "health.bare.livez_rps", ">=0.9"},
	{"5", "health: /healthz throughput (16 conns, JSON)", "req/s", "health.guard.healthz_rps",
		"bare net/http /livez", "health.bare.livez_rps", ""},
	{"5", "health: /metrics scrape, wall (1 conn)", "µs", "health.guard.metrics_wall_us",
		"client_golang floor (Go + process collectors)", "health.bare.metrics_wall_us", ""},
	{"5", "health: /metrics scrape, server CPU", "µs", "health.guard.metrics_cpu_us",
		"client_golang floor (Go + process collectors)", "health.bare.metrics_cpu_us", ""},
	{"5", "health: /metrics scrape as Prometheus (gzip), server CPU", "µs", "health.guard.metrics_gzip_cpu_us",
		"client_golang floor (Go + process collectors)", "health.bare.metrics_gzip_cpu_us", ""},
	{"6", "peak RSS (VmHWM), supervising sleep", "MiB", "mem.guard.hwm_mib",
		"flock L sleep", "mem.flock.hwm_mib", "abs<=12"},
	{"6", "peak RSS, --listen, after SCRAPES plain scrapes", "MiB", "mem.guard_listen.hwm_mib",
		"flock L sleep", "mem.flock.hwm_mib", "abs<=12"},
	{"6", "", "MiB", "mem.guard_listen.hwm_mib",
		"client_golang floor, same scrapes", "mem.bare.hwm_mib", ""},
	{"6", "peak RSS, --listen, after SCRAPES Prometheus (gzip) scrapes", "MiB", "mem.guard_listen.gzip_hwm_mib",
		"flock L sleep", "mem.flock.hwm_mib", "abs<=12"},
	{"6", "", "MiB", "mem.guard_listen.gzip_hwm_mib",
		"client_golang floor, same scrapes", "mem.bare.gzip_hwm_mib", ""},
	{"9", "REPORT_MB MB through --quiet-success, wall", "s", "report.guard.quiet_wall_s",
		"chronic (moreutils)", "report.chronic.quiet_wall_s", "<=1.0"},
	{"9", "REPORT_MB MB through --quiet-success, peak RSS", "MiB", "report.guard.quiet_rss_mib",
		"chronic (moreutils)", "report.chronic.quiet_rss_mib", "abs<=24"},
	{"9", "guard run --ping URL -- true (local server), per run", "ms", "report.guard.ping_wall_ms",
		"guard run -- true", "report.guard.noping_wall_ms", ""},
	{"8", "etcd hand-over: holder's job ends -> standby's job starts", "µs", "etcd.guard.handover_us",
		"etcdctl lock (3.7.3)", "etcd.etcdctl.handover_us", "<=1.2"},
	{"8", "etcd take-over: holder SIGKILLed -> standby's job starts (TTL 3 s)", "ms", "etcd.guard.takeover_ms",
		"etcdctl lock (3.7.3)", "etcd.etcdctl.takeover_ms", "abs<=3600"},
}

func tableCmd(args []string) error {
	if len(args) != 1 {
		usage()
	}
	m, err := readTSV(args[0])
	if err != nil {
		return err
	}
	subst := strings.NewReplacer("HOLD", m["contend.hold_ms"]+" ms", "SCRAPES", m["mem.scrapes"], "REPORT_MB", m["report.mb"])
	fmt.Println("| # | figure | unit | guard | peer | peer's | guard / peer | goal | verdict |")
	fmt.Println("|---|---|---|--:|---|--:|--:|---|---|")
	var missed []string
	what := "" // the figure of a continuation row is the last one named
	for _, r := range rows {
		if r.what != "" {
			what = r.what
		}
		g, p := m[r.guard], m[r.peerKey]
		if g == "" && p == "" {
			continue // that figure was not run
		}
		ratio := "-"
		gf, gerr := strconv.ParseFloat(g, 64)
		pf, perr := strconv.ParseFloat(p, 64)
		if gerr == nil && perr == nil && pf != 0 {
			ratio = fmt.Sprintf("%.2fx", gf/pf)
		}
		goal, verdict := verdictOf(r.goal, gf, pf, gerr == nil && perr == nil)
		if verdict == "MISSED" {
			missed = append(missed, fmt.Sprintf("%s. %s: %s vs %s %s (%s; goal %s)", r.fig, subst.Replace(what), g, subst.Replace(r.peer), p, ratio, goal))
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.fig, subst.Replace(r.what), r.unit,
			dash(g), subst.Replace(r.peer), dash(p), ratio, goal, verdict)
	}
	if len(missed) > 0 {
		fmt.Println()
		fmt.Println("Goals missed:")
		for _, s := range missed {
			fmt.Println("- " + s)
		}
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// verdictOf renders a goal and whether guard met it.
func verdictOf(goal string, g, p float64, ok bool) (text, verdict string) {
	if goal == "" {
		return "", ""
	}
	abs := strings.HasPrefix(goal, "abs")
	op, v := goal[:2], goal[2:]
	if abs {
		op, v = goal[3:5], goal[5:]
	}
	lim, err := strconv.ParseFloat(v, 64)
	if err != nil {
		panic("report: malformed goal " + goal)
	}
	text = op + " " + v + "x"
	x := g / p
	if abs {
		text, x = "guard "+op+" "+v, g
	}
	if !ok || (!abs && p == 0) {
		return text, "?"
	}
	met := (op == "<=" && x <= lim) || (op == ">=" && x >= lim)
	if met {
		return text, "met"
	}
	return text, "MISSED"
}
