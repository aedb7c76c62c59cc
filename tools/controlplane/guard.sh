#!/bin/sh
# Usage: guard.sh <owner-pid> <command> [args...]
#
# Runs <command> as a child and makes sure it does not outlive its owner: when <owner-pid>
# is gone (a test run killed with SIGKILL runs no exit handler), the guard stops the child.
# An owner pid of 0 means no owner (`npm run cluster:up`, stopped by `cluster:down`).
# SIGTERM/SIGINT/SIGHUP stop the child too: SIGTERM first, SIGKILL if it lingers.
owner=$1
shift

"$@" &
child=$!

stop_child() {
  kill -TERM "$child" 2>/dev/null
  # Up to 20 s for a graceful exit (checked every 0.1 s), then SIGKILL.
  tries=0
  while kill -0 "$child" 2>/dev/null && [ "$tries" -lt 200 ]; do
    sleep 0.1
    tries=$((tries + 1))
  done
  kill -KILL "$child" 2>/dev/null
  wait "$child"
  exit $?
}
trap stop_child TERM INT HUP

while kill -0 "$child" 2>/dev/null; do
  if [ "$owner" != 0 ] && ! kill -0 "$owner" 2>/dev/null; then
    stop_child
  fi
  sleep 0.2
done
wait "$child"
