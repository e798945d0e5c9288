// Package report tells the world how a run of a guarded job went, at its
// start and at its end: pings to a monitoring service ([Pinger], the
// healthchecks.io protocol), gauges pushed to a Prometheus Pushgateway
// ([Pusher]), and the job's captured output ([Capture]) that feeds both the
// ping's body and guard run --quiet-success. (The node_exporter textfile,
// the other report, stays in package health, beside the metrics it shares
// names and help with.)
//
// Reporting never changes a run (guard's contract, promise 10): every
// report here is bounded in time, its failures are returned or counted for
// the caller to log, and nothing here touches the lock. The caller sends the
// end reports after the lock is released.
//
// # Captured output: head and tail, in memory
//
// A [Capture] keeps the first [HeadSize] bytes and the last [TailSize] bytes
// of what the job writes, in memory, and counts what it drops in between:
// memory stays under HeadSize+TailSize plus one read buffer whatever the job
// writes (gigabytes included), nothing is written to disk (a job's output
// may be secret, and a full or read-only /tmp must not fail a run), and the
// two ends of a failing job's output are the parts that explain it: how it
// started and how it died. Spilling to a temporary file was rejected for
// those reasons; chronic(1) keeps everything in memory.
//
// For --quiet-success the job's stdout and stderr are the same pipe, so the
// order of its lines is exactly the order it wrote them (chronic keeps two
// buffers and prints all of stdout before all of stderr). Without
// --quiet-success but with --ping, the output is copied through to guard's
// own as it comes and also captured: through one pipe when guard's stdout
// and stderr are the same file (cron's mail pipe, a terminal), where the
// order is exact; else through one pipe each, and between the two streams
// the capture has the order guard read them in (the ping body's last lines
// may then lag on one stream by up to a pipe's buffer).
//
// # Pings
//
// A [Pinger] follows healthchecks.io's protocol, which Cronitor, Dead Man's
// Snitch and most self-hosted monitors accept: URL/start?rid=R when the job
// starts, then URL/<exit status>?rid=R (0 is success) as a POST whose body
// is the tail of the output ([PingBodySize] bytes, cut at a line start). R is
// a random UUID, one per run, so the service pairs start and end. The URL is
// a secret (whoever knows it can report for the job): it never appears in an
// error returned here, only its scheme and host.
//
// See https://healthchecks.io/docs/http_api/ and
// https://github.com/prometheus/pushgateway.
package report
