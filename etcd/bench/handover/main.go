// Command handover measures, against a real etcd (embedded, on loopback),
// how fast the lock passes from one holder to the next with guard-etcd and
// with etcdctl lock, side by side and interleaved (figure 8 of
// scripts/bench.sh):
//
//   - hand-over: the holder's job ends -> the standby's job starts, both
//     watch-driven (the standby waits in the queue);
//   - take-over: the holder's process is SIGKILLed -> the standby's job
//     starts: at most the TTL (counted from the holder's last renewal, so
//     usually less) plus etcd's revoke loop (every 500 ms).
//
// Times are CLOCK_MONOTONIC readings taken by bench/stamp (the jobs) and by
// this program (the SIGKILL). Results go to -tsv as key<TAB>value lines.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/guardkit/guard/etcd/internal/etcdtest"
)

func main() {
	guardEtcd := flag.String("guard", "", "the guard-etcd binary")
	etcdctl := flag.String("etcdctl", "", "the etcdctl binary")
	stamp := flag.String("stamp", "", "bench/stamp")
	dir := flag.String("dir", "", "a scratch directory")
	tsv := flag.String("tsv", "", "append results to this file")
	n := flag.Int("n", 20, "hand-over rounds per contender")
	kills := flag.Int("kills", 3, "take-over rounds per contender")
	ttl := flag.Int("ttl", 3, "lease TTL in seconds for the take-over rounds")
	flag.Parse()
	if *guardEtcd == "" || *etcdctl == "" || *stamp == "" || *dir == "" {
		fmt.Fprintln(os.Stderr, "usage: handover -guard GUARD_ETCD -etcdctl ETCDCTL -stamp STAMP -dir DIR [-tsv FILE] [-n N] [-kills K] [-ttl S]")
		os.Exit(2)
	}
	e, ep, err := etcdtest.Start(filepath.Join(*dir, "etcd"))
	if err != nil {
		fail(err)
	}
	defer e.Close()
	b := &bench{dir: *dir, ep: ep, stamp: *stamp}
	contenders := []contender{
		{"guard", func(name string, job ...string) []string {
			return append([]string{*guardEtcd, "run", "--etcd", ep, "--wait", "60s", "--ttl", strconv.Itoa(*ttl) + "s",
				"--lease-grace", "500ms", "--name", name, "--"}, job...)
		}},
		{"etcdctl", func(name string, job ...string) []string {
			return append([]string{*etcdctl, "--endpoints=" + ep, "lock", "--ttl=" + strconv.Itoa(*ttl), name, "--"}, job...)
		}},
	}
	hand := map[string][]float64{}
	take := map[string][]float64{}
	for i := range *n {
		for _, c := range contenders {
			us, err := b.handover(c, fmt.Sprintf("h-%s-%d-%d", c.key, time.Now().UnixNano(), i))
			if err != nil {
				fail(err)
			}
			hand[c.key] = append(hand[c.key], us)
		}
	}
	for i := range *kills {
		for _, c := range contenders {
			ms, err := b.takeover(c, fmt.Sprintf("k-%s-%d-%d", c.key, time.Now().UnixNano(), i))
			if err != nil {
				fail(err)
			}
			take[c.key] = append(take[c.key], ms)
		}
	}
	fmt.Printf("| contender | hand-over median (µs) | min | max | take-over after SIGKILL, TTL %ds, median (ms) | min | max |\n", *ttl)
	fmt.Println("|---|--:|--:|--:|--:|--:|--:|")
	var lines []string
	for _, c := range contenders {
		h, k := stats(hand[c.key]), stats(take[c.key])
		fmt.Printf("| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f |\n", c.key, h[0], h[1], h[2], k[0], k[1], k[2])
		lines = append(lines, fmt.Sprintf("etcd.%s.handover_us\t%.0f", c.key, h[0]), fmt.Sprintf("etcd.%s.takeover_ms\t%.0f", c.key, k[0]))
	}
	if *tsv != "" {
		f, err := os.OpenFile(*tsv, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			fail(err)
		}
		fmt.Fprintln(f, strings.Join(lines, "\n"))
		f.Close()
	}
}

type contender struct {
	key string
	cmd func(name string, job ...string) []string // argv holding name while job runs
}

type bench struct{ dir, ep, stamp string }

// handover: a holder whose job waits for a go file then execs stamp (its
// last instruction), a standby queued behind it whose job is stamp.
func (b *bench) handover(c contender, name string) (float64, error) {
	gofile := filepath.Join(b.dir, name+".go")
	holder, t0, err := b.start(c.cmd(name, "sh", "-c", fmt.Sprintf("while [ ! -e %s ]; do sleep 0.002; done; exec %s", gofile, b.stamp)), name+".t0")
	if err != nil {
		return 0, err
	}
	defer holder.Process.Kill()
	time.Sleep(300 * time.Millisecond) // the holder holds
	standby, t1, err := b.start(c.cmd(name, b.stamp), name+".t1")
	if err != nil {
		return 0, err
	}
	defer standby.Process.Kill()
	time.Sleep(300 * time.Millisecond) // the standby is queued and watching
	if err := os.WriteFile(gofile, nil, 0o644); err != nil {
		return 0, err
	}
	if err := waitDone(holder, standby); err != nil {
		return 0, fmt.Errorf("%s hand-over: %w", c.key, err)
	}
	a, err1 := readStamp(t0)
	z, err2 := readStamp(t1)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%s hand-over: stamps: %v %v", c.key, err1, err2)
	}
	return float64(z-a) / 1e3, nil
}

// takeover: SIGKILL the holder (guard-etcd or etcdctl itself, not its job)
// and time the standby's job start from that instant.
func (b *bench) takeover(c contender, name string) (float64, error) {
	holder, _, err := b.start(c.cmd(name, "sleep", "300"), name+".t0")
	if err != nil {
		return 0, err
	}
	defer syscall.Kill(-holder.Process.Pid, syscall.SIGKILL)
	time.Sleep(500 * time.Millisecond)
	standby, t1, err := b.start(c.cmd(name, b.stamp), name+".t1")
	if err != nil {
		return 0, err
	}
	defer standby.Process.Kill()
	time.Sleep(500 * time.Millisecond)
	killed := monotonic()
	holder.Process.Signal(syscall.SIGKILL)
	if err := waitDone(standby); err != nil {
		return 0, fmt.Errorf("%s take-over: %w", c.key, err)
	}
	holder.Wait()
	z, err := readStamp(t1)
	if err != nil {
		return 0, err
	}
	return float64(z-killed) / 1e6, nil
}

// start runs argv in its own process group with stdout to file out.
func (b *bench) start(argv []string, out string) (*exec.Cmd, string, error) {
	path := filepath.Join(b.dir, out)
	f, err := os.Create(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	return cmd, path, nil
}

func waitDone(cmds ...*exec.Cmd) error {
	done := make(chan error, len(cmds))
	for _, c := range cmds {
		go func() { done <- c.Wait() }()
	}
	timeout := time.After(60 * time.Second)
	for range cmds {
		select {
		case err := <-done:
			if err != nil {
				return err
			}
		case <-timeout:
			return fmt.Errorf("not done after 60s")
		}
	}
	return nil
}

func readStamp(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("%s: no stamp", path)
	}
	return strconv.ParseInt(f[0], 10, 64)
}

func monotonic() int64 {
	var ts syscall.Timespec
	const clockMonotonic = 1
	syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0)
	return ts.Nano()
}

// stats returns the median, min and max of v.
func stats(v []float64) [3]float64 {
	if len(v) == 0 {
		return [3]float64{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return [3]float64{s[len(s)/2], s[0], s[len(s)-1]}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "handover:", err)
	os.Exit(1)
}
