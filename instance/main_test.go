package instance

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The test binary doubles as a lock holder: GUARD_TEST_HOLD=PATH makes it
// take the lock, print "locked TOKEN", then act on lines read from stdin:
// "release" releases cleanly and exits, "crash" exits without releasing.
func TestMain(m *testing.M) {
	if path := os.Getenv("GUARD_TEST_HOLD"); path != "" {
		os.Exit(hold(path))
	}
	os.Exit(m.Run())
}

func hold(path string) int {
	l, err := New(Options{Path: path, Name: "helper", Command: []string{"helper"}})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	le, err := l.Lock(context.Background())
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("locked", le.Token())
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "release":
			if err := le.Release(); err != nil {
				fmt.Println("error", err)
				return 1
			}
			fmt.Println("released")
			return 0
		case "crash":
			return 3
		}
	}
	return 0
}

// holder is a helper process holding (or waiting for) a lock.
type holder struct {
	cmd   *exec.Cmd
	in    *os.File
	lines *bufio.Scanner
}

func startHolder(t *testing.T, path string) *holder {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GUARD_TEST_HOLD="+path)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = pr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	h := &holder{cmd: cmd, in: pw, lines: bufio.NewScanner(out)}
	t.Cleanup(func() {
		pw.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	return h
}

// expect reads the helper's next line and checks its first word.
func (h *holder) expect(t *testing.T, word string) string {
	t.Helper()
	if !h.lines.Scan() {
		t.Fatalf("helper ended before %q: %v", word, h.lines.Err())
	}
	line := h.lines.Text()
	if !strings.HasPrefix(line, word) {
		t.Fatalf("helper said %q, want %q", line, word)
	}
	return strings.TrimSpace(strings.TrimPrefix(line, word))
}

func (h *holder) say(t *testing.T, cmd string) {
	t.Helper()
	if _, err := fmt.Fprintln(h.in, cmd); err != nil {
		t.Fatal(err)
	}
}

// tempLockDir returns a directory safe to keep locks in (t.TempDir is 0700
// in a sticky /tmp).
func tempLockDir(t *testing.T) string {
	t.Helper()
	return t.TempDir()
}
