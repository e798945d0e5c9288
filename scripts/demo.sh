#!/usr/bin/env bash
# A guarded demo on guard's built-in defaults: a job named "demo" holds the
# lock in the default directory (/run/guard for root, else
# $XDG_RUNTIME_DIR/guard); a second run of the same job is skipped; status,
# reload and stop act on the proven holder only.
set -u
guard=${1:-bin/guard}
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; echo "(exit $?)"; }

say "$guard run --name demo -- sh -c '...long job...' &"
"$guard" run --name demo -- sh -c 'echo "job: started with token $GUARD_TOKEN, lock $GUARD_LOCK";
  trap "echo job: reloading on SIGHUP" HUP; i=0; while [ $i -lt 50 ]; do (trap "" HUP; sleep 0.1); i=$((i+1)); done; echo job: done' &
sleep 0.5
run "$guard" run --name demo -- echo "this must not run: the lock is busy"
run "$guard" status --name demo
run "$guard" status --name demo --json
run "$guard" reload --name demo
sleep 0.3
run "$guard" stop --name demo
wait
run "$guard" status --name demo
run "$guard" run --name demo -- echo "the lock is free again: this runs"
