# shellcheck shell=bash
# Shared by the engine runners (docker.sh, containerd.sh, podman.sh); source it.
#
# What it gives a runner:
#   e2e_init ENGINE     root check, runtime under test ($RT, absolute), work dir $W,
#                       EXIT trap that runs the runner's `engine_stop` then removes
#                       everything under $W (mounts first), busybox rootfs tarball.
#   check NAME FN ARGS  runs FN in its own process group with a deadline, prints
#                       `ok N - NAME` or `not ok N - NAME # reason [cause]`.
#   expect_eq / expect_contains / expect_code / wait_for    assertions for checks.
#   e2e_summary         prints `N passed, M failed` and returns non-zero on failures.
#
# Env:
#   RUNTIME or MYDOCKER  runtime binary (default: target/release/mydocker, built if missing)
#   E2E_KEEP=1           keep $W (logs of every check) after the run
#   E2E_TRACE=1          register a wrapper that logs every runtime call to $W/runtime-calls.log
#   E2E_ONLY=REGEX       run only the checks whose name matches
#   E2E_TIMEOUT=SECS     deadline of one check (default 90)

# shellcheck source=hack/lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/hack/lib.sh"

E2E_PASSED=0
E2E_FAILED=0
E2E_N=0
E2E_FAILURES=()
E2E_TIMEOUT=${E2E_TIMEOUT:-90}
# Paths under $W a runner's daemons may have mounted; unmounted before rm -rf.
W=

# The runtime under test, as an absolute path; builds MyDocker if needed.
e2e_runtime() {
  local rt=${RUNTIME:-${MYDOCKER:-}}
  if [ -z "$rt" ]; then
    rt=$REPO_ROOT/target/release/mydocker
    if [ ! -x "$rt" ]; then
      info "no $rt: cargo build --release"
      cargo_build_release
    fi
  fi
  [ -x "$rt" ] || die "runtime $rt is not an executable"
  readlink -f "$rt"
}

# e2e_init ENGINE: everything a runner needs before it starts its daemon.
e2e_init() {
  E2E_ENGINE=$1
  # shellcheck disable=SC2119  # no script arguments to echo back
  require_root
  RT=$(e2e_runtime)
  RT_REAL=$RT
  W=$(mktemp -d "/tmp/mydocker-e2e-$E2E_ENGINE.XXXXXX")
  chmod 0755 "$W"
  mkdir -p "$W/logs" "$W/bin"
  trap e2e_exit EXIT
  trap 'exit 130' INT TERM
  # Unique per run: every cgroup the engines make lives under it.
  CG_PARENT=mydocker-e2e-$E2E_ENGINE-$$
  if [ "${E2E_TRACE:-0}" = 1 ]; then
    # Same basename as the runtime: podman decides on JSON logging by basename.
    local wrap
    wrap=$W/bin/$(basename "$RT_REAL")
    cat > "$wrap" <<EOF
#!/bin/bash
echo "\$(date +%T.%N) ppid=\$PPID \$(basename "\$0") \$*" >> $W/runtime-calls.log
exec $RT_REAL "\$@"
EOF
    chmod 0755 "$wrap"
    RT=$wrap
  fi
  info "engine $E2E_ENGINE, runtime $RT_REAL ($("$RT_REAL" --version 2>/dev/null | head -1)), work dir $W"
  e2e_rootfs
}

# A busybox rootfs tarball ($W/rootfs.tar) from hack/mkbundle, with a few more
# users and the files the checks read.
e2e_rootfs() {
  "$REPO_ROOT/hack/mkbundle" "$W/bundle" true >/dev/null 2>&1
  local r=$W/bundle/rootfs
  mkdir -p "$r"/{usr/bin,usr/sbin,sbin,var,run,home/tester,data}
  cat > "$r/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
tester:x:1000:1000:tester:/home/tester:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
  printf 'root:x:0:\ntester:x:1000:\nusers:x:100:\nnobody:x:65534:\n' > "$r/etc/group"
  chown 1000:1000 "$r/home/tester"
  tar --numeric-owner -C "$r" -cf "$W/rootfs.tar" .
}

# e2e_oci_archive OUT NAME: an OCI image layout archive of $W/rootfs.tar
# (one uncompressed layer, CMD /bin/sh) that `ctr image import` and `podman load` read.
e2e_oci_archive() {
  local out=$1 name=$2 d=$W/oci
  rm -rf "$d"; mkdir -p "$d/blobs/sha256"
  local ld ls cd cs md ms
  ld=$(sha256sum "$W/rootfs.tar" | cut -d' ' -f1); ls=$(stat -c %s "$W/rootfs.tar")
  cp "$W/rootfs.tar" "$d/blobs/sha256/$ld"
  printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$ld" > "$d/config"
  cd=$(sha256sum "$d/config" | cut -d' ' -f1); cs=$(stat -c %s "$d/config")
  mv "$d/config" "$d/blobs/sha256/$cd"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' "$cd" "$cs" "$ld" "$ls" > "$d/manifest"
  md=$(sha256sum "$d/manifest" | cut -d' ' -f1); ms=$(stat -c %s "$d/manifest")
  mv "$d/manifest" "$d/blobs/sha256/$md"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"latest"}}]}' "$md" "$ms" "$name" > "$d/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' > "$d/oci-layout"
  tar -C "$d" -cf "$out" oci-layout index.json blobs
  rm -rf "$d"
}

# Installs the engine's packages that are missing (apt-cache policy first, so a
# machine without the package in its sources fails with a clear message).
e2e_packages() {
  local p missing=()
  for p in "$@"; do
    case $p in
      busybox-static) busybox_ok /bin/busybox || missing+=("$p") ;;
      *) pkg_installed "$p" || missing+=("$p") ;;
    esac
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  for p in "${missing[@]}"; do
    apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [0-9]' \
      || info "apt-cache has no candidate for $p (yet): will try after apt-get update"
  done
  # policy-rc.d keeps the packages' init scripts from starting system daemons.
  local guard=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    guard=1
  fi
  apt_install "${missing[@]}"
  [ "$guard" = 1 ] && rm -f /usr/sbin/policy-rc.d
  return 0
}

# wait_for SECS CMD...: polls CMD (every 50 ms) until it succeeds or SECS pass.
wait_for() {
  local secs=$1; shift
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$end" ]; then
      echo "timed out after ${secs}s waiting for: $*" >&2
      return 1
    fi
    sleep 0.05
  done
}

# Assertions: each prints what it saw on failure (that becomes the reason).
expect_eq() {   # expect_eq WANT GOT [WHAT]
  if [ "$1" != "$2" ]; then
    echo "${3:-value}: expected '$1', got '$(printf %s "$2" | head -c 300 | tr '\n' '|')'" >&2
    return 1
  fi
}
expect_contains() {   # expect_contains HAYSTACK NEEDLE [WHAT]
  case $1 in
    *"$2"*) return 0 ;;
  esac
  echo "${3:-output}: '$(printf %s "$1" | head -c 300 | tr '\n' '|')' lacks '$2'" >&2
  return 1
}
expect_not_contains() {
  case $1 in
    *"$2"*)
      echo "${3:-output}: '$(printf %s "$1" | head -c 300 | tr '\n' '|')' contains '$2'" >&2
      return 1 ;;
  esac
}
expect_code() {   # expect_code WANT CMD...: runs CMD, its exit code must be WANT
  local rc=0
  "${@:2}" || rc=$?
  if [ "$rc" != "$1" ]; then
    echo "exit code of '${*:2}': expected $1, got $rc" >&2
    return 1
  fi
}

# tty_run CMDLINE: runs CMDLINE under a new pty (script(1)) with its stdin held
# open, prints its output without the CRs. With stdin at EOF at once, `podman
# run -it` may lose the output (engines.md §6.3).
tty_run() {
  local fifo=$W/tty-stdin.$BASHPID rc=0 sp
  mkfifo "$fifo"
  sleep 120 > "$fifo" &
  sp=$!
  script -qefc "$1" /dev/null < "$fifo" > "$fifo.out" 2>&1 || rc=$?
  kill "$sp" 2>/dev/null || true
  wait "$sp" 2>/dev/null || true
  tr -d '\r\0' < "$fifo.out"
  if [ "$rc" != 0 ]; then
    tr -d '\r\0' < "$fifo.out" >&2
    echo "exit code $rc of: $1" >&2
  fi
  rm -f "$fifo" "$fifo.out"
  return "$rc"
}

# A failed check's cause, from the messages the runtime gives today.
e2e_cause() {
  local r=$1
  case $r in
    *"not supported: linux.seccomp"*) echo "missing feature: seccomp (issue 5)" ;;
    *"not supported: linux.resources"*) echo "missing feature: linux.resources (issue 3)" ;;
    *"not supported: process.terminal"* | *"not supported: --console-socket"*)
      echo "missing feature: terminals (issue 4)" ;;
    *"unrecognized subcommand 'exec'"* | *"exec failed: "*"exit status 2"*)
      echo "missing feature: exec (issue 4)" ;;
    *"unrecognized subcommand '"[a-z]*"'"* | *"mydocker "[pru][aesp]*" failed: exit status 2"* | *"exit status 2: unknown"*)
      echo "missing feature: ps/pause/resume/update (issue 3)" ;;
    *"not supported: mounts["*"tmpcopyup"*) echo "missing feature: tmpcopyup mount option" ;;
    *) echo "" ;;
  esac
}

# check NAME FN [ARGS...]: runs one check in its own process group (so a hung
# engine command can be killed with everything it started), with a deadline.
check() {
  local name=$1; shift
  if [ -n "${E2E_ONLY:-}" ] && ! [[ $name =~ $E2E_ONLY ]]; then return 0; fi
  E2E_N=$((E2E_N + 1))
  local log pid rc=0
  log=$W/logs/$(printf '%03d' "$E2E_N")-$name.log
  set -m
  ( set -euo pipefail; "$@" ) > "$log" 2>&1 < /dev/null &
  pid=$!
  set +m
  local end=$((SECONDS + E2E_TIMEOUT)) timed_out=0
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$end" ]; then
      kill -KILL -- "-$pid" 2>/dev/null || true
      timed_out=1
      break
    fi
    sleep 0.05
  done
  wait "$pid" || rc=$?
  if [ "$timed_out" = 1 ]; then
    echo "timed out after ${E2E_TIMEOUT}s" >> "$log"
    rc=124
  fi
  if [ "$rc" = 0 ]; then
    E2E_PASSED=$((E2E_PASSED + 1))
    echo "ok $E2E_N - $name"
  else
    E2E_FAILED=$((E2E_FAILED + 1))
    local reason cause
    # The last non-empty line, minus docker's boilerplate, is the reason.
    reason=$(grep -v '^\s*$' "$log" | grep -v 'WARNING: IPv4 forwarding' | tail -n 1 | cut -c1-300 || true)
    # The runtime's own message, when there is one, names the cause better.
    cause=$(e2e_cause "$(cat "$log")" || true)
    echo "not ok $E2E_N - $name # ${reason:-exit $rc}${cause:+ [$cause]}"
    E2E_FAILURES+=("$name")
  fi
}

# skip NAME REASON: a check that does not apply here (counted in neither column).
skip() {
  E2E_N=$((E2E_N + 1))
  echo "ok $E2E_N - $1 # SKIP $2"
}

e2e_summary() {
  echo "$E2E_PASSED passed, $E2E_FAILED failed"
  [ "$E2E_FAILED" = 0 ]
}

# True while PID lives (a zombie waiting for a lazy reaper counts as gone).
alive() {
  local st
  st=$(cut -d')' -f2 "/proc/$1/stat" 2>/dev/null | cut -d' ' -f2) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# Stops a process we started, by pid: TERM, then KILL after SECS; waits for it.
stop_pid() {
  local pid=$1 secs=${2:-20}
  [ -n "$pid" ] || return 0
  alive "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  local end=$((SECONDS + secs))
  while alive "$pid" && [ "$SECONDS" -lt "$end" ]; do sleep 0.1; done
  if alive "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    while alive "$pid"; do sleep 0.1; done
  fi
  wait "$pid" 2>/dev/null || true
}

# Pids of processes whose command line mentions our work dir (shims, conmon):
# they were started for this run only.
pids_under_w() {
  local p
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = "$$" ] && continue
    if tr "\\0" " " 2>/dev/null < "$p/cmdline" | grep -qF -- "$W/"; then
      echo "${p#/proc/}"
    fi
  done
}

# Unmounts everything under $W (deepest first).
umount_under_w() {
  local m
  awk -v w="$W/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
}

# Removes the cgroup dirs made under $CG_PARENT in every hierarchy (bottom-up),
# and conmon's plain dirs in unmounted controller dirs of the /sys/fs/cgroup tmpfs.
cgroup_cleanup() {
  local parent=$CG_PARENT d
  [ -n "$parent" ] || return 0
  for d in /sys/fs/cgroup/*/"$parent" /sys/fs/cgroup/"$parent"; do
    [ -d "$d" ] || continue
    if mountpoint -q "$(dirname "$d")"; then
      find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    else
      rm -rf "$d"
    fi
  done
}

e2e_exit() {
  local rc=$?
  set +e
  if declare -F engine_stop >/dev/null; then engine_stop; fi
  local p
  for p in $(pids_under_w); do kill -KILL "$p" 2>/dev/null; done
  umount_under_w
  cgroup_cleanup
  if [ "${E2E_KEEP:-0}" = 1 ]; then
    info "kept $W"
  else
    rm -rf --one-file-system "$W"
  fi
  exit "$rc"
}

# cgroup files an engine check reads: v1 (this host) or v2 (the VM from ../shared/vm).
CG2=0; [ -f /sys/fs/cgroup/cgroup.controllers ] && CG2=1
# expect_frozen FILE_OF: FILE_OF CTRL FILE prints a cgroup file's path.
expect_frozen() {
  if [ "$CG2" = 1 ]; then expect_eq 1 "$(cat "$($1 - "$2" cgroup.freeze)")" cgroup.freeze
  else expect_eq FROZEN "$(cat "$($1 freezer "$2" freezer.state)")" freezer.state; fi
}
# expect_mem_cpu FILE_OF ID BYTES QUOTA_US (period 100000)
expect_mem_cpu() {
  if [ "$CG2" = 1 ]; then
    expect_eq "$3" "$(cat "$($1 - "$2" memory.max)")" memory.max
    expect_eq "$4 100000" "$(cat "$($1 - "$2" cpu.max)")" cpu.max
  else
    expect_eq "$3" "$(cat "$($1 memory "$2" memory.limit_in_bytes)")" memory.limit_in_bytes
    expect_eq "$4" "$(cat "$($1 cpu "$2" cpu.cfs_quota_us)")" cpu.cfs_quota_us
  fi
}
