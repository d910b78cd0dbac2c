# The command of a live-updated container (the Tiltfile puts this text in its `command`, followed
# by the image's entrypoint; the chart's args follow): runs that command, and starts it again
# whenever live update touches the marker file after copying changed Python files, which a
# running interpreter would not load. When the command stops on its own, its exit status is the
# container's, so a crash is still a crash for Kubernetes; SIGTERM is passed on.
# POSIX sh: the images have no bash. `sleep 1` bounds how long a touch waits to be seen.
# RESTART_MARKER: another marker file (tests).
marker="${RESTART_MARKER:-/tmp/.restart-after-sync}"
rm -f "$marker"
child=
trap 'if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null; wait "$child"; fi; exit 143' TERM INT
while :; do
  "$@" &
  child=$!
  while kill -0 "$child" 2>/dev/null && [ ! -e "$marker" ]; do
    sleep 1
  done
  if [ ! -e "$marker" ]; then
    wait "$child"
    exit $?
  fi
  rm -f "$marker"
  echo "restart-on-sync: live update copied new files; restarting $*" >&2
  kill -TERM "$child" 2>/dev/null
  wait "$child"
done
