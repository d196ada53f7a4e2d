# Process supervision for bin/run (sourced). `start NAME CMD...` runs CMD under a small
# supervisor that restarts it whenever it exits, with bounded backoff: 1, 2, 4 … up to
# RESTART_MAX_DELAY seconds, back to 1 s once a run has lasted RESTART_STABLE_SECONDS.
# `stop_all` stops every supervisor and its process (SIGTERM, then SIGKILL after 10 s).
# Production does the same with systemd or a Procfile runner: see deploy/.

RESTART_MAX_DELAY="${RESTART_MAX_DELAY:-30}"
RESTART_STABLE_SECONDS="${RESTART_STABLE_SECONDS:-60}"
# glibc's malloc raises its mmap threshold each time a large block is freed, after which large
# buffers (a socket's reads, a batch's rows) come from the heap and their pages stay with the
# process after a burst. Fixed thresholds give them back (docs/soak.md: a burst of 1,000
# downloads left a process 87 MiB larger, 17 MiB with these). Production: deploy/*.env.example.
export MALLOC_MMAP_THRESHOLD_="${MALLOC_MMAP_THRESHOLD_:-131072}"
export MALLOC_TRIM_THRESHOLD_="${MALLOC_TRIM_THRESHOLD_:-131072}"
SUPERVISORS=()
declare -A SUPERVISED=()

# Stop the supervised process: SIGTERM, then SIGKILL if it is still there after 10 s.
_stop_child() {
  local pid=$1
  [[ -n "$pid" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    if [[ $(ps -o stat= -p "$pid") == Z* ]]; then break; fi
    sleep 0.2
  done
  if [[ $(ps -o stat= -p "$pid") != Z* ]] && kill -0 "$pid" 2>/dev/null; then
    echo "run: $name (pid $pid) ignored SIGTERM; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

_supervise() {
  local name=$1
  shift
  local delay=1 child="" status started
  trap '_stop_child "$child"; exit 0' TERM INT
  while true; do
    started=$SECONDS
    # A session of its own: Ctrl-C at the terminal reaches bin/run only, which stops the
    # supervisors, which stop their pieces (rather than every piece dying and being restarted).
    setsid "$@" &
    child=$!
    echo "run: started $name (pid $child)"
    status=0
    wait "$child" || status=$?
    if ((SECONDS - started >= RESTART_STABLE_SECONDS)); then delay=1; fi
    echo "run: $name exited (status $status); restarting in $delay s" >&2
    child=""
    sleep "$delay" &
    wait $! || true
    delay=$((delay * 2 > RESTART_MAX_DELAY ? RESTART_MAX_DELAY : delay * 2))
  done
}

start() {
  _supervise "$@" &
  SUPERVISORS+=("$!")
  SUPERVISED[$!]=$1
}

stop_all() {
  # A second Ctrl-C (or make and timeout both passing on SIGTERM) must not cut the cleanup short.
  trap - EXIT
  trap '' INT TERM
  local i pid
  # Newest first, so a process is gone before what it depends on.
  for ((i = ${#SUPERVISORS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${SUPERVISORS[i]}" 2>/dev/null || true
  done
  for pid in "${SUPERVISORS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  [[ ${#SUPERVISORS[@]} -eq 0 ]] || echo "run: stopped"
}
