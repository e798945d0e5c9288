package health_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/guardkit/guard/health"
)

// A standby that waits for the lock is live but not ready; it becomes ready
// once it holds the lock and the program says so.
func ExampleServer() {
	var st health.State
	st.SetLockPath("/run/guard/backup.lock")
	srv := health.NewServer(health.Options{
		Addr:     "127.0.0.1:0",
		Lock:     &st,
		Reloads:  &st,
		Ready:    st.Ready,
		Gatherer: health.NewRegistry(&st, health.BuildInfo{Version: "1.0.0"}),
	})
	addr, err := srv.Start(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Shutdown(context.Background())

	probe := func(path string) {
		resp, err := http.Get("http://" + addr.String() + path)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Printf("%s %d %s\n", path, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	st.Waiting()
	probe("/livez")
	probe("/readyz")
	st.Acquired(os.Getpid(), 1, time.Now(), 2*time.Second)
	st.JobStarted()
	st.SetReady(true)
	probe("/readyz")
	// Output:
	// /livez 200 ok
	// /readyz 503 [-]lock failed: waiting for the lock (standby)
	// [-]ready failed: program not ready
	// readyz check failed
	// /readyz 200 ok
}

func ExampleWriteTextfile() {
	dir, _ := os.MkdirTemp("", "textfile")
	defer os.RemoveAll(dir)
	finished := time.Unix(1767225600, 0)
	_ = health.WriteTextfile(dir, "backup", health.JobRun{Result: health.ResultSuccess, Duration: 90 * time.Second, Finished: finished})
	_ = health.WriteTextfile(dir, "backup", health.JobRun{Result: health.ResultSkipped})
	b, _ := os.ReadFile(filepath.Join(dir, "backup.prom"))
	for _, line := range strings.Split(string(b), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			fmt.Println(line)
		}
	}
	// Output:
	// guard_job_duration_seconds{name="backup"} 90
	// guard_job_last_exit_code{name="backup"} 0
	// guard_job_last_failure_timestamp_seconds{name="backup"} 0
	// guard_job_last_run_timestamp_seconds{name="backup"} 1.7672256e+09
	// guard_job_last_success_timestamp_seconds{name="backup"} 1.7672256e+09
	// guard_job_running{name="backup"} 0
	// guard_job_runs_total{name="backup",result="success"} 1
	// guard_job_runs_total{name="backup",result="failure"} 0
	// guard_job_runs_total{name="backup",result="timeout"} 0
	// guard_job_runs_total{name="backup",result="killed"} 0
	// guard_job_runs_total{name="backup",result="skipped"} 1
	// guard_report_failures_total{name="backup",target="ping"} 0
	// guard_report_failures_total{name="backup",target="push"} 0
}
