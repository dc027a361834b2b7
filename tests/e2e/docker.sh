#!/usr/bin/env bash
# shellcheck disable=SC2016  # snippets for the containers are single-quoted on purpose
# tests/e2e/docker.sh -- Docker (dockerd 20.10 + its containerd + runc v2 shim) with the
# runtime under test registered as `mydocker`, on its own socket and data dirs.
# See tests/e2e/lib.sh for the env switches (RUNTIME=/usr/sbin/runc for the reference run).
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_packages docker.io containerd tini busybox-static
e2e_init docker

IMG=eco/busybox:latest
# Docker always sends its default seccomp profile; the checks that are not about
# seccomp turn it off so that they test what they mean to (one check keeps it).
SEC=(--security-opt seccomp=unconfined)
export DOCKER_CONFIG=$W/cli

D() { /usr/bin/docker -H "unix://$W/docker.sock" "$@"; }
RUN() { D run --pull=never --runtime=mydocker "$@"; }
# The runtime's state root as the shim passes it (--root <exec-root>/runtime-runc/moby).
RT_ROOT=$W/exec/runtime-runc/moby

write_config() {   # write_config LIVE_RESTORE
  cat > "$W/daemon.json" <<EOF
{ "data-root": "$W/data", "exec-root": "$W/exec", "pidfile": "$W/dockerd.pid",
  "hosts": ["unix://$W/docker.sock"], "storage-driver": "overlay2",
  "iptables": false, "ip-forward": false, "ip-masq": false, "bridge": "none",
  "exec-opts": ["native.cgroupdriver=cgroupfs"], "cgroup-parent": "/$CG_PARENT",
  "features": {"buildkit": false}, "live-restore": $1,
  "runtimes": { "mydocker": { "path": "$RT" } } }
EOF
}

daemon_start() {
  dockerd --config-file "$W/daemon.json" >> "$W/dockerd.log" 2>&1 &
  local DPID=$!
  # Restart checks run in a subshell: the main shell finds the daemon here.
  echo "$DPID" > "$W/dockerd.mypid"
  if ! wait_for 60 D version; then
    tail -n 20 "$W/dockerd.log" >&2
    die "dockerd did not come up"
  fi
}

daemon_stop() {
  stop_pid "$(cat "$W/dockerd.mypid" 2>/dev/null)" 30
  rm -f "$W/dockerd.mypid"
}

# shellcheck disable=SC2317  # called by the EXIT trap in lib.sh
engine_stop() {
  if [ -s "$W/dockerd.mypid" ]; then
    local ids
    ids=$(D ps -aq 2>/dev/null || true)
    # shellcheck disable=SC2086
    [ -z "$ids" ] || D rm -f $ids >/dev/null 2>&1 || true
  fi
  daemon_stop
}

full_id() { D inspect -f '{{.Id}}' "$1"; }
state_of() { D inspect -f '{{.State.Status}}' "$1"; }
host_pid() { D inspect -f '{{.State.Pid}}' "$1"; }
is_running() { expect_eq running "$(state_of "$1" 2>&1)" "state of $1"; }
# Host cgroup file of a container: /sys/fs/cgroup/<ctrl>/<parent>/<id>/<file>.
cg_file() {
  if [ "$CG2" = 1 ]; then echo "/sys/fs/cgroup/$CG_PARENT/$(full_id "$2")/$3"; else echo "/sys/fs/cgroup/$1/$CG_PARENT/$(full_id "$2")/$3"; fi
}

# ---------------------------------------------------------------- checks
t_run_output() {
  local out
  out=$(RUN --rm "${SEC[@]}" $IMG echo hello-from-docker)
  expect_eq hello-from-docker "$out"
}
t_run_exit_code() { expect_code 7 RUN --rm "${SEC[@]}" $IMG sh -c 'exit 7'; }
t_run_missing_binary_127() { expect_code 127 RUN --rm "${SEC[@]}" $IMG /nonexistent; }
t_run_rm_leaves_no_state() {
  RUN --name c-rmstate --rm "${SEC[@]}" $IMG true
  expect_eq "" "$(D ps -aq --filter name=c-rmstate)" "docker ps"
  expect_eq "" "$(ls "$RT_ROOT" 2>/dev/null)" "runtime state dir"
}
t_seccomp_default_profile() {
  local out
  out=$(RUN --rm $IMG grep Seccomp: /proc/self/status)
  expect_contains "$out" "2" "Seccomp mode"
}
t_seccomp_custom_profile() {
  cat > "$W/seccomp.json" <<'EOF'
{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}
EOF
  local out rc=0
  out=$(RUN --rm --security-opt "seccomp=$W/seccomp.json" $IMG sh -c 'mkdir /tmp/x && echo made' 2>&1) || rc=$?
  echo "$out"
  expect_contains "$out" "Operation not permitted" "mkdir under the profile"
  expect_eq 1 "$rc" "exit code"
}
t_detach_exec() {
  RUN -d --name c-exec "${SEC[@]}" $IMG sleep 1000
  expect_eq hi "$(D exec c-exec echo hi)" "exec output"
  expect_code 3 D exec c-exec sh -c 'exit 3'
}
t_exec_tty() {
  is_running c-exec
  local out
  out=$(D exec -t c-exec tty 2>&1 | tr -d '\r') || { echo "$out" >&2; return 1; }
  expect_contains "$out" /dev/pts/ "tty in exec -t"
}
t_logs() {
  RUN -d --name c-logs "${SEC[@]}" $IMG sh -c 'echo to-stdout; echo to-stderr >&2; sleep 1000'
  wait_for 20 sh -c "/usr/bin/docker -H unix://$W/docker.sock logs c-logs 2>&1 | grep -q to-stderr"
  expect_contains "$(D logs c-logs 2>/dev/null)" to-stdout "stdout stream"
  expect_contains "$(D logs c-logs 2>&1 >/dev/null)" to-stderr "stderr stream"
}
t_top() {
  is_running c-exec
  expect_contains "$(D top c-exec)" "sleep 1000"
}
t_stats() {
  is_running c-exec
  local out
  out=$(D stats --no-stream --format '{{.PIDs}} {{.MemUsage}}' c-exec)
  echo "$out"
  expect_eq 1 "${out%% *}" "PIDs"
  expect_not_contains "$out" "0B / 0B" "memory usage"
}
t_pause_unpause() {
  RUN -d --name c-pause "${SEC[@]}" $IMG sh -c 'while :; do date +%s%N > /tmp/t; sleep 0.1; done'
  D pause c-pause
  expect_eq paused "$(state_of c-pause)"
  expect_frozen cg_file c-pause
  D unpause c-pause
  expect_eq running "$(state_of c-pause)"
}
t_update() {
  RUN -d --name c-update "${SEC[@]}" $IMG sleep 1000
  D update --memory 64m --memory-swap 128m --cpus 0.5 --pids-limit 50 c-update
  expect_mem_cpu cg_file c-update 67108864 50000
  expect_eq 50 "$(cat "$(cg_file pids c-update pids.max)")" pids.max
}
t_stop_term() {
  RUN -d --name c-stopterm "${SEC[@]}" $IMG sh -c 'trap "exit 42" TERM; echo ready; while :; do sleep 0.2; done'
  wait_for 20 sh -c "/usr/bin/docker -H unix://$W/docker.sock logs c-stopterm | grep -q ready"
  D stop -t 20 c-stopterm
  expect_eq 42 "$(D inspect -f '{{.State.ExitCode}}' c-stopterm)" "exit code after TERM"
}
t_stop_kill_after_grace() {
  # PID 1 without a handler ignores SIGTERM: docker must SIGKILL after the grace period.
  RUN -d --name c-stopkill "${SEC[@]}" $IMG sleep 1000
  local t0=$SECONDS
  D stop -t 2 c-stopkill
  expect_eq 137 "$(D inspect -f '{{.State.ExitCode}}' c-stopkill)" "exit code"
  [ $((SECONDS - t0)) -ge 2 ] || { echo "stopped before the grace period" >&2; return 1; }
}
t_kill_signal() {
  RUN -d --name c-kill "${SEC[@]}" $IMG sh -c 'trap "echo got-usr1; exit 5" USR1; echo ready; while :; do sleep 0.2; done'
  wait_for 20 sh -c "/usr/bin/docker -H unix://$W/docker.sock logs c-kill | grep -q ready"
  D kill -s USR1 c-kill
  expect_eq 5 "$(D wait c-kill)" "exit code"
  expect_contains "$(D logs c-kill)" got-usr1
}
t_rm_force_running() {
  RUN -d --name c-rmf "${SEC[@]}" $IMG sleep 1000
  local id
  id=$(full_id c-rmf)
  D rm -f c-rmf
  expect_eq "" "$(D ps -aq --filter name=c-rmf)" "docker ps"
  [ ! -e "$RT_ROOT/$id" ] || { echo "runtime state $RT_ROOT/$id left behind" >&2; return 1; }
}
t_oom_killed() {
  local rc=0
  RUN --name c-oom --memory 32m --memory-swap 32m "${SEC[@]}" $IMG sh -c 'tail /dev/zero' || rc=$?
  expect_eq 137 "$rc" "exit code"
  expect_eq true "$(D inspect -f '{{.State.OOMKilled}}' c-oom)" OOMKilled
}
t_pids_limit() {
  local out
  out=$(RUN --rm --pids-limit 5 "${SEC[@]}" $IMG sh -c 'for i in 1 2 3 4 5 6 7 8; do sleep 3 & done; wait' 2>&1 || true)
  expect_contains "$out" "can't fork"
}
t_read_only() {
  local out rc=0
  out=$(RUN --rm --read-only "${SEC[@]}" $IMG touch /x 2>&1) || rc=$?
  expect_contains "$out" "Read-only file system"
  expect_eq 1 "$rc" "exit code"
}
t_user() {
  expect_eq 1000:1000 "$(RUN --rm --user 1000:1000 "${SEC[@]}" $IMG sh -c 'echo $(id -u):$(id -g)')"
  expect_eq tester "$(RUN --rm --user tester "${SEC[@]}" $IMG id -un)"
}
t_workdir() {
  expect_eq /tmp "$(RUN --rm -w /tmp "${SEC[@]}" $IMG pwd)"
  expect_eq /new/dir "$(RUN --rm -w /new/dir "${SEC[@]}" $IMG pwd)"
}
t_env() { expect_eq "bar baz" "$(RUN --rm -e FOO=bar -e BAR=baz "${SEC[@]}" $IMG sh -c 'echo $FOO $BAR')"; }
t_hostname() { expect_eq box1 "$(RUN --rm --hostname box1 "${SEC[@]}" $IMG hostname)"; }
t_cap_drop() {
  local out rc=0
  RUN --rm "${SEC[@]}" $IMG sh -c 'touch /tmp/f && chown 1 /tmp/f'
  out=$(RUN --rm --cap-drop CHOWN "${SEC[@]}" $IMG sh -c 'touch /tmp/f && chown 1 /tmp/f' 2>&1) || rc=$?
  expect_contains "$out" "Operation not permitted"
  expect_eq 1 "$rc" "exit code"
}
t_cap_add() {
  local rc=0
  RUN --rm --network none "${SEC[@]}" $IMG ip link set lo mtu 1500 2>/dev/null || rc=$?
  [ "$rc" != 0 ] || { echo "ip link set worked without CAP_NET_ADMIN" >&2; return 1; }
  RUN --rm --network none --cap-add NET_ADMIN "${SEC[@]}" $IMG ip link set lo mtu 1500
}
t_network_none() {
  # dockerd adds its prestart hook `libnetwork-setkey` for this mode.
  local out
  out=$(RUN --rm --network none "${SEC[@]}" $IMG sh -c 'ls /sys/class/net')
  expect_eq lo "$out" "interfaces"
}
t_loopback_up() {
  # runc brings lo up in every new network namespace; programs rely on 127.0.0.1.
  expect_contains "$(RUN --rm --network none "${SEC[@]}" $IMG ip link show lo)" ",UP" "lo flags"
}
t_network_host() {
  expect_eq "$(readlink /proc/$$/ns/net)" "$(RUN --rm --network host "${SEC[@]}" $IMG readlink /proc/self/ns/net)" "net ns"
}
t_network_container() {
  RUN -d --name c-nettarget "${SEC[@]}" $IMG sleep 1000
  local want
  want=$(readlink "/proc/$(host_pid c-nettarget)/ns/net")
  expect_eq "$want" "$(RUN --rm --network container:c-nettarget "${SEC[@]}" $IMG readlink /proc/self/ns/net)" "net ns"
}
t_bind_ro() {
  mkdir -p "$W/vol" && echo hello-vol > "$W/vol/f"
  expect_eq hello-vol "$(RUN --rm -v "$W/vol:/data:ro" "${SEC[@]}" $IMG cat /data/f)"
  local out rc=0
  out=$(RUN --rm -v "$W/vol:/data:ro" "${SEC[@]}" $IMG touch /data/x 2>&1) || rc=$?
  expect_contains "$out" "Read-only file system"
}
t_bind_rw() {
  mkdir -p "$W/vol"
  RUN --rm -v "$W/vol:/data" "${SEC[@]}" $IMG sh -c 'echo written > /data/rw'
  expect_eq written "$(cat "$W/vol/rw")" "host file"
}
t_tmpfs() {
  local out
  out=$(RUN --rm --tmpfs /scratch:rw,size=1m "${SEC[@]}" $IMG grep ' /scratch ' /proc/mounts)
  expect_contains "$out" "tmpfs /scratch tmpfs"
  expect_contains "$out" "size=1024k"
}
t_ulimit() {
  expect_eq "1234 2345" "$(RUN --rm --ulimit nofile=1234:2345 "${SEC[@]}" $IMG sh -c 'echo $(ulimit -n) $(ulimit -Hn)')"
}
t_init() {
  local out
  out=$(RUN --rm --init "${SEC[@]}" $IMG cat /proc/1/cmdline | tr '\0' ' ')
  expect_contains "$out" "docker-init"
}
t_run_tty() {
  local out
  out=$(tty_run "/usr/bin/docker -H unix://$W/docker.sock run --pull=never --runtime=mydocker --rm -it ${SEC[*]} $IMG sh -c 'tty; echo tty-done; sleep 1'")
  expect_contains "$out" /dev/pts/
  expect_contains "$out" tty-done
}
t_restart_daemon_live_restore_off() {
  RUN -d --name c-restart1 "${SEC[@]}" $IMG sleep 1000
  daemon_stop
  daemon_start
  expect_eq exited "$(state_of c-restart1)" "state after restart"
  D start c-restart1
  expect_eq running "$(state_of c-restart1)" "state after docker start"
  D rm -f c-restart1
}
t_restart_daemon_live_restore_on() {
  write_config true
  daemon_stop
  daemon_start
  RUN -d --name c-restart2 "${SEC[@]}" $IMG sleep 1000
  local pid
  pid=$(host_pid c-restart2)
  daemon_stop
  kill -0 "$pid" || { echo "container died with the daemon" >&2; return 1; }
  daemon_start
  expect_eq running "$(state_of c-restart2)" "state after restart"
  expect_eq "$pid" "$(host_pid c-restart2)" "pid after restart"
  D stop -t 1 c-restart2
  expect_eq exited "$(state_of c-restart2)" "state after stop"
  D rm c-restart2
}

# ---------------------------------------------------------------- main
write_config false
daemon_start
D import --change 'CMD ["/bin/sh"]' "$W/rootfs.tar" $IMG >/dev/null

check run_output t_run_output
check run_exit_code t_run_exit_code
check run_missing_binary_127 t_run_missing_binary_127
check run_rm_leaves_no_state t_run_rm_leaves_no_state
check seccomp_default_profile t_seccomp_default_profile
check seccomp_custom_profile t_seccomp_custom_profile
check detach_exec t_detach_exec
check exec_tty t_exec_tty
check logs t_logs
check top t_top
check stats_no_stream t_stats
check pause_unpause t_pause_unpause
check update t_update
check stop_term t_stop_term
check stop_kill_after_grace t_stop_kill_after_grace
check kill_signal t_kill_signal
check rm_force_running t_rm_force_running
check oom_killed_137 t_oom_killed
check pids_limit t_pids_limit
check read_only t_read_only
check user t_user
check workdir t_workdir
check env t_env
check hostname t_hostname
check cap_drop t_cap_drop
check cap_add t_cap_add
check network_none_setkey_hook t_network_none
check loopback_up t_loopback_up
check network_host t_network_host
check network_container t_network_container
check bind_ro t_bind_ro
check bind_rw t_bind_rw
check tmpfs t_tmpfs
check ulimit t_ulimit
check init t_init
check run_tty_console_socket t_run_tty
check restart_daemon_live_restore_off t_restart_daemon_live_restore_off
check restart_daemon_live_restore_on t_restart_daemon_live_restore_on
e2e_summary
