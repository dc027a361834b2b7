#!/usr/bin/env bash
# shellcheck disable=SC2016  # snippets for the containers are single-quoted on purpose
# tests/e2e/containerd.sh -- containerd 1.6 + its runc v2 shim driven by ctr, with the
# runtime under test as the shim's binary (`ctr run --runc-binary`), on its own
# socket, root and state dirs. See tests/e2e/lib.sh for the env switches.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_packages containerd busybox-static
e2e_init containerd

NS=e2e
IMG=docker.io/eco/busybox:latest
C() { ctr --address "$W/containerd.sock" -n "$NS" "$@"; }
# The runtime's state root as the shim passes it (--root <runc-root>/<namespace>).
RT_ROOT=$W/runc-root/$NS
RUNC_OPTS=(--runtime io.containerd.runc.v2 --runc-binary "$RT" --runc-root "$W/runc-root" --fifo-dir "$W/fifo")
# ctr 1.6 sends cpu.shares 1024 unless told 0: a linux.resources setting the
# checks other than default_cpu_shares and memory_cpus_limits do not mean to test.
NO_SHARES=(--cpu-shares 0)

# CRUN [ctr run flags...] -- NAME ARGS...: ctr run of IMG with the runtime under
# test, in a cgroup under our own parent.
CRUN() {
  local flags=()
  while [ "$1" != -- ]; do flags+=("$1"); shift; done
  shift
  local name=$1; shift
  C run "${RUNC_OPTS[@]}" --cgroup "/$CG_PARENT/$name" "${NO_SHARES[@]}" "${flags[@]}" "$IMG" "$name" "$@"
}

daemon_start() {
  cat > "$W/config.toml" <<EOF
version = 2
root = "$W/root"
state = "$W/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$W/containerd.sock"
[ttrpc]
  address = "$W/containerd.sock.ttrpc"
[debug]
  address = "$W/debug.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$W/opt"
EOF
  containerd --config "$W/config.toml" >> "$W/containerd.log" 2>&1 &
  echo $! > "$W/containerd.mypid"
  if ! wait_for 60 C version; then
    tail -n 20 "$W/containerd.log" >&2
    die "containerd did not come up"
  fi
}

daemon_stop() {
  stop_pid "$(cat "$W/containerd.mypid" 2>/dev/null)" 30
  rm -f "$W/containerd.mypid"
}

# shellcheck disable=SC2317  # called by the EXIT trap in lib.sh
engine_stop() {
  if [ -s "$W/containerd.mypid" ]; then
    local c
    for c in $(C task ls -q 2>/dev/null); do
      C task kill -s SIGKILL "$c" >/dev/null 2>&1 || true
      C task rm -f "$c" >/dev/null 2>&1 || true
    done
    for c in $(C container ls -q 2>/dev/null); do
      C container rm "$c" >/dev/null 2>&1 || true
    done
  fi
  daemon_stop
}

task_status() { C task ls 2>/dev/null | awk -v c="$1" '$1 == c { print $3 }'; }
task_pid() { C task ls 2>/dev/null | awk -v c="$1" '$1 == c { print $2 }'; }
status_is() { expect_eq "$2" "$(task_status "$1")" "status of $1"; }
cg_file() {
  if [ "$CG2" = 1 ]; then echo "/sys/fs/cgroup/$CG_PARENT/$2/$3"; else echo "/sys/fs/cgroup/$1/$CG_PARENT/$2/$3"; fi
}
# rm_container NAME: kill, delete task and container.
rm_container() {
  C task kill -s SIGKILL "$1" >/dev/null 2>&1 || true
  C task rm -f "$1" >/dev/null 2>&1 || true
  C container rm "$1"
}

# ---------------------------------------------------------------- checks
t_run_output() { expect_eq hello-from-ctr "$(CRUN --rm -- c-out echo hello-from-ctr)"; }
t_default_cpu_shares() {
  expect_eq ok "$(C run "${RUNC_OPTS[@]}" --cgroup "/$CG_PARENT/c-shares" --rm "$IMG" c-shares echo ok)"
}
t_loopback_up() {
  # runc brings lo up in every new network namespace; programs rely on 127.0.0.1.
  expect_contains "$(CRUN --rm -- c-lo ip link show lo)" ",UP" "lo flags"
}
t_run_exit_code() { expect_code 7 CRUN --rm -- c-exit sh -c 'exit 7'; }
t_run_missing_binary() {
  local out rc=0
  out=$(CRUN --rm -- c-missing /nonexistent 2>&1) || rc=$?
  echo "$out"
  [ "$rc" != 0 ] || { echo "ctr run of a missing binary succeeded" >&2; return 1; }
  expect_contains "$out" "no such file or directory"
  C container rm c-missing 2>/dev/null || true
  expect_eq "" "$(ls "$RT_ROOT" 2>/dev/null)" "runtime state dir"
}
t_run_rm_leaves_no_state() {
  CRUN --rm -- c-rmstate true
  expect_eq "" "$(ls "$RT_ROOT" 2>/dev/null)" "runtime state dir"
  expect_eq "" "$(C container ls -q)" "containers"
}
t_seccomp_default() { expect_contains "$(CRUN --rm --seccomp -- c-secdef grep Seccomp: /proc/self/status)" 2 "Seccomp mode"; }
t_seccomp_profile() {
  cat > "$W/seccomp.json" <<'EOF'
{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}
EOF
  local out rc=0
  out=$(CRUN --rm --seccomp --seccomp-profile "$W/seccomp.json" -- c-secprof sh -c 'mkdir /tmp/x && echo made' 2>&1) || rc=$?
  echo "$out"
  expect_contains "$out" "Operation not permitted"
  expect_eq 1 "$rc" "exit code"
}
t_detach_exec() {
  CRUN -d -- c-exec sleep 1000
  expect_eq hi "$(C task exec --exec-id e1 c-exec echo hi)" "exec output"
  expect_code 3 C task exec --exec-id e2 c-exec sh -c 'exit 3'
}
t_exec_tty() {
  status_is c-exec RUNNING
  local out
  out=$(tty_run "ctr --address $W/containerd.sock -n $NS task exec -t --exec-id e3 c-exec tty")
  expect_contains "$out" /dev/pts/
}
t_task_ps() {
  status_is c-exec RUNNING
  expect_contains "$(C task ps c-exec)" "$(task_pid c-exec)"
}
t_metrics() {
  status_is c-exec RUNNING
  local out
  out=$(C task metrics c-exec)
  echo "$out"
  expect_contains "$out" "pids.current"
  # v1: memory.usage_in_bytes; v2: memory.usage
  expect_contains "$out" "memory.usage"
}
t_pause_resume() {
  CRUN -d -- c-pause sleep 1000
  C task pause c-pause
  status_is c-pause PAUSED
  expect_frozen cg_file c-pause
  C task resume c-pause
  status_is c-pause RUNNING
}
# A foreground ctr run in the background, its out dir, and a "ready" file.
t_kill_signal() {
  mkdir -p "$W/out-kill"
  CRUN --rm --mount "type=bind,src=$W/out-kill,dst=/out,options=rbind:rw" -- c-kill \
    sh -c 'trap "exit 5" USR1; echo > /out/ready; while :; do sleep 0.2; done' &
  local bg=$!
  wait_for 30 test -e "$W/out-kill/ready"
  C task kill -s SIGUSR1 c-kill
  local rc=0
  wait "$bg" || rc=$?
  expect_eq 5 "$rc" "exit code"
}
t_kill_term() {
  mkdir -p "$W/out-term"
  CRUN --rm --mount "type=bind,src=$W/out-term,dst=/out,options=rbind:rw" -- c-term \
    sh -c 'trap "exit 42" TERM; echo > /out/ready; while :; do sleep 0.2; done' &
  local bg=$!
  wait_for 30 test -e "$W/out-term/ready"
  C task kill c-term
  local rc=0
  wait "$bg" || rc=$?
  expect_eq 42 "$rc" "exit code"
}
t_kill_sigkill() {
  # PID 1 without a handler ignores SIGTERM; SIGKILL stops it.
  CRUN -d -- c-sigkill sleep 1000
  C task kill -s SIGKILL c-sigkill
  wait_for 20 sh -c "ctr --address $W/containerd.sock -n $NS task ls | grep -q 'c-sigkill .*STOPPED'"
  C task rm c-sigkill
  C container rm c-sigkill
}
t_rm_force_running() {
  CRUN -d -- c-rmf sleep 1000
  C task rm -f c-rmf
  C container rm c-rmf
  [ ! -e "$RT_ROOT/c-rmf" ] || { echo "runtime state $RT_ROOT/c-rmf left behind" >&2; return 1; }
}
t_oom_137() { expect_code 137 CRUN --rm --memory-limit 33554432 -- c-oom sh -c 'tail /dev/zero'; }
t_memory_cpus() {
  CRUN -d --memory-limit 67108864 --cpus 0.5 -- c-limits sleep 1000
  expect_mem_cpu cg_file c-limits 67108864 50000
  rm_container c-limits
}
t_read_only() {
  local out rc=0
  out=$(CRUN --rm --read-only -- c-ro touch /x 2>&1) || rc=$?
  expect_contains "$out" "Read-only file system"
  expect_eq 1 "$rc" "exit code"
}
t_cwd() { expect_eq /tmp "$(CRUN --rm --cwd /tmp -- c-cwd pwd)"; }
t_env() { expect_eq bar "$(CRUN --rm --env FOO=bar -- c-env sh -c 'echo $FOO')"; }
t_cap_drop() {
  local out rc=0
  CRUN --rm -- c-chown sh -c 'touch /tmp/f && chown 1 /tmp/f'
  out=$(CRUN --rm --cap-drop CAP_CHOWN -- c-capdrop sh -c 'touch /tmp/f && chown 1 /tmp/f' 2>&1) || rc=$?
  expect_contains "$out" "Operation not permitted"
  expect_eq 1 "$rc" "exit code"
}
t_cap_add() {
  local rc=0
  CRUN --rm -- c-nocap ip link set lo mtu 1500 2>/dev/null || rc=$?
  [ "$rc" != 0 ] || { echo "ip link set worked without CAP_NET_ADMIN" >&2; return 1; }
  CRUN --rm --cap-add CAP_NET_ADMIN -- c-capadd ip link set lo mtu 1500
}
t_net_host() { expect_eq "$(readlink /proc/$$/ns/net)" "$(CRUN --rm --net-host -- c-nethost readlink /proc/self/ns/net)" "net ns"; }
t_with_ns_network() {
  CRUN -d -- c-nstarget sleep 1000
  local pid
  pid=$(task_pid c-nstarget)
  expect_eq "$(readlink "/proc/$pid/ns/net")" \
    "$(CRUN --rm --with-ns "network:/proc/$pid/ns/net" -- c-nsjoin readlink /proc/self/ns/net)" "net ns"
  rm_container c-nstarget
}
t_bind_ro() {
  mkdir -p "$W/vol" && echo hello-vol > "$W/vol/f"
  expect_eq hello-vol "$(CRUN --rm --mount "type=bind,src=$W/vol,dst=/data,options=rbind:ro" -- c-bindro cat /data/f)"
  local out rc=0
  out=$(CRUN --rm --mount "type=bind,src=$W/vol,dst=/data,options=rbind:ro" -- c-bindro2 touch /data/x 2>&1) || rc=$?
  expect_contains "$out" "Read-only file system"
}
t_bind_rw() {
  mkdir -p "$W/vol"
  CRUN --rm --mount "type=bind,src=$W/vol,dst=/data,options=rbind:rw" -- c-bindrw sh -c 'echo written > /data/rw'
  expect_eq written "$(cat "$W/vol/rw")" "host file"
}
t_tmpfs() {
  local out
  out=$(CRUN --rm --mount "type=tmpfs,src=tmpfs,dst=/scratch,options=size=1m" -- c-tmpfs grep ' /scratch ' /proc/mounts)
  expect_contains "$out" "tmpfs /scratch tmpfs"
  expect_contains "$out" "size=1024k"
}
t_run_tty() {
  local out
  out=$(tty_run "ctr --address $W/containerd.sock -n $NS run ${RUNC_OPTS[*]} --cgroup /$CG_PARENT/c-tty ${NO_SHARES[*]} --rm -t $IMG c-tty sh -c 'tty; echo tty-done; sleep 1'")
  expect_contains "$out" /dev/pts/
  expect_contains "$out" tty-done
}
t_restart_daemon() {
  CRUN -d -- c-restart sleep 1000
  local pid
  pid=$(task_pid c-restart)
  daemon_stop
  kill -0 "$pid" || { echo "task died with containerd" >&2; return 1; }
  daemon_start
  status_is c-restart RUNNING
  expect_eq "$pid" "$(task_pid c-restart)" "pid after restart"
  C task kill -s SIGKILL c-restart
  wait_for 20 sh -c "ctr --address $W/containerd.sock -n $NS task ls | grep -q 'c-restart .*STOPPED'"
  C task rm c-restart
  C container rm c-restart
}

# ---------------------------------------------------------------- main
daemon_start
e2e_oci_archive "$W/image.tar" "$IMG"
C image import "$W/image.tar" >/dev/null

if [ "${E2E_SHORT:-0}" = 1 ]; then
  # The CI subset: one container through the shim.
  check run_output t_run_output
  check run_exit_code t_run_exit_code
  e2e_summary
  exit
fi
check run_output t_run_output
check run_exit_code t_run_exit_code
check default_cpu_shares t_default_cpu_shares
check run_missing_binary t_run_missing_binary
check run_rm_leaves_no_state t_run_rm_leaves_no_state
check seccomp_default_profile t_seccomp_default
check seccomp_custom_profile t_seccomp_profile
check detach_exec t_detach_exec
check exec_tty t_exec_tty
check task_ps t_task_ps
check task_metrics t_metrics
check pause_resume t_pause_resume
check kill_signal t_kill_signal
check kill_term t_kill_term
check kill_sigkill t_kill_sigkill
check rm_force_running t_rm_force_running
check oom_137 t_oom_137
check memory_cpus_limits t_memory_cpus
check read_only t_read_only
check cwd t_cwd
check env t_env
check cap_drop t_cap_drop
check cap_add t_cap_add
check loopback_up t_loopback_up
check net_host t_net_host
check with_ns_network t_with_ns_network
check bind_ro t_bind_ro
check bind_rw t_bind_rw
check tmpfs t_tmpfs
check run_tty_console_socket t_run_tty
check restart_daemon t_restart_daemon
e2e_summary
