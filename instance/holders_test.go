package instance

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/guardkit/guard/internal/proc"
)

func TestParseFdinfoLock(t *testing.T) {
	const head = "pos:\t0\nflags:\t0100002\nmnt_id:\t29\nino:\t9977881\n"
	tests := []struct {
		name   string
		in     string
		ino    uint64
		want   bool
		pid    int
		write  bool
		devMaj uint32
		devMin uint32
	}{
		{name: "exclusive flock", in: head + "lock:\t1: FLOCK  ADVISORY  WRITE 1837 fe:00:9977881 0 EOF\n",
			ino: 9977881, want: true, pid: 1837, write: true, devMaj: 0xfe},
		{name: "shared flock", in: head + "lock:\t2: FLOCK  ADVISORY  READ 42 08:01:9977881 0 EOF\n",
			ino: 9977881, want: true, pid: 42, devMaj: 8, devMin: 1},
		{name: "locker gone, as a child PID namespace shows it", in: head + "lock:\t1: FLOCK  ADVISORY  WRITE 0 fe:00:9977881 0 EOF\n",
			ino: 9977881, want: true, pid: 0, write: true, devMaj: 0xfe},
		{name: "no lock line (the file is open, not locked)", in: head, ino: 9977881},
		{name: "POSIX lock only", in: head + "lock:\t1: POSIX  ADVISORY  WRITE 1837 fe:00:9977881 0 EOF\n", ino: 9977881},
		{name: "OFD lock only", in: head + "lock:\t1: OFDLCK ADVISORY  WRITE -1 fe:00:9977881 0 EOF\n", ino: 9977881},
		{name: "another inode", in: head + "lock:\t1: FLOCK  ADVISORY  WRITE 1837 fe:00:1234 0 EOF\n", ino: 9977881},
		{name: "POSIX then FLOCK", in: head + "lock:\t1: POSIX  ADVISORY  WRITE 7 fe:00:9977881 0 EOF\nlock:\t2: FLOCK  ADVISORY  WRITE 8 fe:00:9977881 0 EOF\n",
			ino: 9977881, want: true, pid: 8, write: true, devMaj: 0xfe},
		{name: "malformed device", in: head + "lock:\t1: FLOCK  ADVISORY  WRITE 1837 fe-00-9977881 0 EOF\n", ino: 9977881},
		{name: "too few fields", in: head + "lock:\t1: FLOCK  ADVISORY\n", ino: 9977881},
		{name: "not at the start of a line", in: head + "xlock:\t1: FLOCK  ADVISORY  WRITE 1837 fe:00:9977881 0 EOF\n", ino: 9977881},
		{name: "empty", in: "", ino: 9977881},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := parseFdinfoLock([]byte(tt.in), tt.ino)
			if ok != tt.want {
				t.Fatalf("found %v, want %v (%+v)", ok, tt.want, e)
			}
			if !ok {
				return
			}
			if e.pid != tt.pid || e.write != tt.write || e.ino != tt.ino || e.major != tt.devMaj || e.minor != tt.devMin {
				t.Errorf("got %+v, want pid %d write %v dev %x:%x ino %d", e, tt.pid, tt.write, tt.devMaj, tt.devMin, tt.ino)
			}
		})
	}
}

// TestFlockHelper is not a test: run with GUARD_TEST_FLOCK_FD=3 it takes
// flock(LOCK_EX) on its descriptor 3 and exits, so the lock's taker is dead
// while the descriptor it locked lives on in its parent.
func TestFlockHelper(t *testing.T) {
	if os.Getenv("GUARD_TEST_FLOCK_FD") != "3" {
		t.Skip("helper process for TestInspectOrphaned")
	}
	if err := unix.Flock(3, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}

// lockThroughDeadHelper locks a new file at path through a child that exits
// at once, and returns the file (whose open file description holds the lock)
// and the dead child's PID, which the kernel names as the lock's taker.
func lockThroughDeadHelper(t *testing.T, path string) (*os.File, int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	cmd := exec.Command(os.Args[0], "-test.run=^TestFlockHelper$")
	cmd.Env = append(os.Environ(), "GUARD_TEST_FLOCK_FD=3")
	cmd.ExtraFiles = []*os.File{f}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("flock helper: %v %s", err, out)
	}
	return f, cmd.Process.Pid
}

// inheritor starts sleep holding f as its descriptor 3, and returns it.
func inheritor(t *testing.T, f *os.File) *exec.Cmd {
	t.Helper()
	c := exec.Command("sleep", "1000")
	c.ExtraFiles = []*os.File{f}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	return c
}

// A lock taken by a recorded holder that died is held on by the processes
// that inherited its descriptor: Inspect lists them as Orphaned, Confirm
// proves each, and once they are gone the lock is stale.
func TestInspectOrphaned(t *testing.T) {
	path := filepath.Join(tempLockDir(t), "job.lock")
	f, dead := lockThroughDeadHelper(t, path)
	boot, _ := proc.BootID()
	ns, _ := proc.PIDNamespace(0)
	rec := Record{PID: dead, StartTicks: 1, BootID: boot, PIDNS: ns, Host: "h", Acquired: time.Now(), Name: "job", Token: 9}
	if _, err := f.WriteAt(rec.Marshal(), 0); err != nil {
		t.Fatal(err)
	}
	child := inheritor(t, f)
	f.Close() // only the child holds the lock now
	h, err := Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if h.State != Held || h.Verified || !h.Orphaned || len(h.Procs) != 1 {
		t.Fatalf("Inspect = %v verified %v orphaned %v procs %+v: %s", h.State, h.Verified, h.Orphaned, h.Procs, h.Reason)
	}
	p := h.Procs[0]
	if p.PID != child.Process.Pid || p.FD != 3 || p.Comm != "sleep" || !p.Write || p.Recorded {
		t.Errorf("holder %+v, want sleep PID %d holding it through fd 3", p, child.Process.Pid)
	}
	if d := h.Describe(); !strings.Contains(d, "dead") || !strings.Contains(d, strconv.Itoa(p.PID)) {
		t.Errorf("Describe() = %q, want the dead holder and PID %d", d, p.PID)
	}
	if err := h.Confirm(p); err != nil {
		t.Errorf("Confirm: %v", err)
	}
	child.Process.Kill()
	child.Wait()
	if err := h.Confirm(p); err == nil {
		t.Error("Confirm succeeded for a dead holder")
	}
	if h, err := Inspect(path); err != nil || h.State != Stale || len(h.Procs) != 0 {
		t.Fatalf("after the holder died: %v %v %+v", h, err, h.Procs)
	}
}

// A lock whose taker is alive and no guard (no record) lists every process
// holding it, and is not Orphaned: nothing proves them the job of a dead
// guard.
func TestInspectForeignHolders(t *testing.T) {
	path := filepath.Join(tempLockDir(t), "job.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	child := inheritor(t, f)
	// Open without the lock: a descriptor on the file is not a hold.
	other, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	h, err := Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if h.State != Held || h.Verified || h.Orphaned || h.LockPID != os.Getpid() {
		t.Fatalf("Inspect = %v verified %v orphaned %v lock PID %d: %s", h.State, h.Verified, h.Orphaned, h.LockPID, h.Reason)
	}
	got := map[int]int{}
	for _, p := range h.Procs {
		got[p.PID] = p.FD
	}
	if len(got) != 2 || got[os.Getpid()] != int(f.Fd()) || got[child.Process.Pid] != 3 {
		t.Fatalf("holders %+v, want this process (fd %d) and PID %d (fd 3)", h.Procs, f.Fd(), child.Process.Pid)
	}
	if d := h.Describe(); !strings.Contains(d, "not a guard record") {
		t.Errorf("Describe() = %q", d)
	}
}
