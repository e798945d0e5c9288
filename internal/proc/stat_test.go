package proc

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// statLine builds a /proc/PID/stat line in the kernel's format: 52 fields,
// with the given pid, comm, state, ppid and start time; pgid and sid are
// 100 and 101, tty_nr 0.
func statLine(pid int, comm string, state byte, ppid int, start uint64) string {
	rest := make([]string, 0, 49)
	rest = append(rest, fmt.Sprint(ppid), "100", "101", "0", "-1", "4194304")
	for i := 10; i <= 21; i++ { // minflt .. itrealvalue
		rest = append(rest, fmt.Sprint(i))
	}
	rest = append(rest, fmt.Sprint(start)) // field 22
	for i := 23; i <= 52; i++ {
		rest = append(rest, "0")
	}
	return fmt.Sprintf("%d (%s) %c %s\n", pid, comm, state, strings.Join(rest, " "))
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Stat
		wantErr bool
	}{
		{name: "plain", in: statLine(42, "sleep", 'S', 7, 123456),
			want: Stat{PID: 42, Comm: "sleep", State: 'S', PPID: 7, PGID: 100, SID: 101, StartTicks: 123456}},
		{name: "comm with spaces and parens", in: statLine(43, "a b) c (d) Z 1 2", 'R', 1, 99),
			want: Stat{PID: 43, Comm: "a b) c (d) Z 1 2", State: 'R', PPID: 1, PGID: 100, SID: 101, StartTicks: 99}},
		{name: "comm is a lone paren", in: statLine(44, ")", 'Z', 2, 5),
			want: Stat{PID: 44, Comm: ")", State: 'Z', PPID: 2, PGID: 100, SID: 101, StartTicks: 5}},
		{name: "empty comm", in: statLine(45, "", 'D', 3, 6),
			want: Stat{PID: 45, Comm: "", State: 'D', PPID: 3, PGID: 100, SID: 101, StartTicks: 6}},
		{name: "comm with newline", in: statLine(46, "x\ny", 'T', 4, 7),
			want: Stat{PID: 46, Comm: "x\ny", State: 'T', PPID: 4, PGID: 100, SID: 101, StartTicks: 7}},
		{name: "empty", in: "", wantErr: true},
		{name: "no parens", in: "42 sleep S 1 2 3", wantErr: true},
		{name: "no pid", in: "(sleep) S 1", wantErr: true},
		{name: "bad pid", in: strings.Replace(statLine(42, "x", 'S', 1, 1), "42", "4x", 1), wantErr: true},
		{name: "truncated", in: "42 (sleep) S 1 100 101 0 -1 4194304 1 2 3", wantErr: true},
		{name: "state not one char", in: strings.Replace(statLine(42, "x", 'S', 1, 1), ") S ", ") SS ", 1), wantErr: true},
		{name: "bad start", in: strings.Replace(statLine(42, "x", 'S', 1, 77), " 77 ", " -77 ", 1), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStat([]byte(tt.in))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseStat(%q) = %+v, want error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseStat(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseStat(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestReadStatSelf(t *testing.T) {
	st, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.PID != os.Getpid() || st.PPID != os.Getppid() {
		t.Errorf("ReadStat(self) pid %d ppid %d, want %d %d", st.PID, st.PPID, os.Getpid(), os.Getppid())
	}
	if st.State == 'Z' || st.Zombie() {
		t.Errorf("ReadStat(self) state %c", st.State)
	}
	if st.StartTicks == 0 {
		t.Error("start ticks 0")
	}
	if since, now := SinceBoot(st.StartTicks), BootTime(); since <= 0 || since > now {
		t.Errorf("started %.2fs after boot, but boot clock says %.2fs", since, now)
	}
}

func TestReadStatGone(t *testing.T) {
	for _, pid := range []int{-1, 0, PIDMax(), DefaultPIDMax + 1} {
		if _, err := ReadStat(pid); !errors.Is(err, ErrGone) {
			t.Errorf("ReadStat(%d) = %v, want ErrGone", pid, err)
		}
	}
}

func TestBootID(t *testing.T) {
	id, err := BootID()
	if err != nil {
		t.Skipf("no /proc/sys/kernel/random/boot_id: %v", err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`).MatchString(id) {
		t.Errorf("BootID() = %q, want a UUID", id)
	}
	if again, _ := BootID(); again != id {
		t.Errorf("BootID() changed: %q then %q", id, again)
	}
}

func TestPIDMaxAndValidPID(t *testing.T) {
	max := PIDMax()
	if max < 2 || max > DefaultPIDMax {
		t.Fatalf("PIDMax() = %d", max)
	}
	tests := []struct {
		pid  int
		want bool
	}{
		{-1, false}, {0, false}, {1, false}, {2, true}, {os.Getpid(), true},
		{max - 1, true}, {max, false}, {1 << 32, false}, {-(1 << 31), false},
	}
	for _, tt := range tests {
		if got := ValidPID(tt.pid); got != tt.want {
			t.Errorf("ValidPID(%d) = %v, want %v", tt.pid, got, tt.want)
		}
	}
}

func TestPIDNamespace(t *testing.T) {
	self, err := PIDNamespace(0)
	if err != nil {
		t.Fatal(err)
	}
	byPID, err := PIDNamespace(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if self == 0 || self != byPID {
		t.Errorf("PIDNamespace(0) = %d, PIDNamespace(self) = %d", self, byPID)
	}
	if _, err := PIDNamespace(PIDMax()); !errors.Is(err, ErrGone) {
		t.Errorf("PIDNamespace(pid_max) = %v, want ErrGone", err)
	}
}
