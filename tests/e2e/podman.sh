#!/usr/bin/env bash
# shellcheck disable=SC2016  # snippets for the containers are single-quoted on purpose
# tests/e2e/podman.sh -- rootful podman 4.3 (+ conmon 2.1.6) with `--runtime <abs path>`,
# its storage, config and tmp dirs under a temp dir. See tests/e2e/lib.sh for the env
# switches. podman has no daemon: conmon calls create/exec, podman itself the rest
# (with no --root: the runtime's default state dir).
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_packages podman conmon tini busybox-static
e2e_init podman

IMG=localhost/eco/busybox:latest
SEC=(--security-opt seccomp=unconfined)
mkdir -p "$W/tmp" "$W/net" "$W/volumes" "$W/cwd"
# podman's default ulimits exceed this machine's hard limits (host.md), and its
# default pids limit (2048) is a linux.resources.pids the checks other than
# pids_limit do not mean to test: both are set here.
cat > "$W/containers.conf" <<EOF
[containers]
netns = "none"
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=32768:32768"]
init_path = "/usr/bin/docker-init"
log_driver = "k8s-file"
pids_limit = 0
[engine]
pull_policy = "never"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$W/events.log"
tmp_dir = "$W/tmp"
volume_path = "$W/volumes"
runtime_supports_json = ["crun", "runc", "$(basename "$RT")"]
[network]
network_config_dir = "$W/net"
EOF
printf '[storage]\ndriver = "overlay"\ngraphroot = "%s/root"\nrunroot = "%s/runroot"\n' "$W" "$W" > "$W/storage.conf"
export CONTAINERS_CONF=$W/containers.conf CONTAINERS_STORAGE_CONF=$W/storage.conf
# conmon writes its OOM marker into the current directory (engines.md §6.3).
cd "$W/cwd"

P() { podman --runtime "$RT" "$@"; }
RUN() { P run --cgroup-parent "/$CG_PARENT" "$@"; }

# shellcheck disable=SC2317  # called by the EXIT trap in lib.sh
engine_stop() {
  P rm -af -t 0 >/dev/null 2>&1 || true
  P image rm -af >/dev/null 2>&1 || true
}

full_id() { P inspect -f '{{.Id}}' "$1"; }
state_of() { P inspect -f '{{.State.Status}}' "$1"; }
host_pid() { P inspect -f '{{.State.Pid}}' "$1"; }
is_running() { expect_eq running "$(state_of "$1" 2>&1)" "state of $1"; }
cg_file() {
  if [ "$CG2" = 1 ]; then echo "/sys/fs/cgroup/$CG_PARENT/libpod-$(full_id "$2")/$3"; else echo "/sys/fs/cgroup/$1/$CG_PARENT/libpod-$(full_id "$2")/$3"; fi
}

# ---------------------------------------------------------------- checks
t_run_output() { expect_eq hello-from-podman "$(RUN --rm "${SEC[@]}" $IMG echo hello-from-podman)"; }
t_run_exit_code() { expect_code 7 RUN --rm "${SEC[@]}" $IMG sh -c 'exit 7'; }
t_run_missing_binary_127() { expect_code 127 RUN --rm "${SEC[@]}" $IMG /nonexistent; }
t_run_rm_leaves_no_state() {
  RUN --name c-rmstate --rm "${SEC[@]}" $IMG true
  expect_eq "" "$(P ps -aq --filter name=c-rmstate)" "podman ps"
}
t_seccomp_default_profile() { expect_contains "$(RUN --rm $IMG grep Seccomp: /proc/self/status)" 2 "Seccomp mode"; }
t_seccomp_custom_profile() {
  cat > "$W/seccomp.json" <<'EOF'
{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}
EOF
  local out rc=0
  out=$(RUN --rm --security-opt "seccomp=$W/seccomp.json" $IMG sh -c 'mkdir /tmp/x && echo made' 2>&1) || rc=$?
  echo "$out"
  expect_contains "$out" "Operation not permitted"
  expect_eq 1 "$rc" "exit code"
}
t_detach_exec() {
  RUN -d --name c-exec "${SEC[@]}" $IMG sleep 1000
  expect_eq hi "$(P exec c-exec echo hi)" "exec output"
  expect_code 3 P exec c-exec sh -c 'exit 3'
}
t_exec_tty() {
  is_running c-exec
  local out
  out=$(tty_run "podman --runtime $RT exec -t c-exec tty")
  expect_contains "$out" /dev/pts/
}
t_logs() {
  RUN -d --name c-logs "${SEC[@]}" $IMG sh -c 'echo to-stdout; echo to-stderr >&2; sleep 1000'
  wait_for 20 sh -c "podman --runtime $RT logs c-logs 2>&1 | grep -q to-stderr"
  expect_contains "$(P logs c-logs 2>/dev/null)" to-stdout "stdout stream"
  expect_contains "$(P logs c-logs 2>&1 >/dev/null)" to-stderr "stderr stream"
}
t_top() { is_running c-exec; expect_contains "$(P top c-exec)" "sleep 1000"; }
t_stats() {
  is_running c-exec
  local out
  out=$(P stats --no-stream --format '{{.PIDs}} {{.MemUsage}}' c-exec)
  echo "$out"
  expect_eq 1 "${out%% *}" "PIDs"
  expect_not_contains "$out" "0B / 0B" "memory usage"
}
t_pause_unpause() {
  RUN -d --name c-pause "${SEC[@]}" $IMG sleep 1000
  P pause c-pause
  expect_eq paused "$(state_of c-pause)"
  expect_frozen cg_file c-pause
  P unpause c-pause
  expect_eq running "$(state_of c-pause)"
}
t_update() {
  RUN -d --name c-update "${SEC[@]}" $IMG sleep 1000
  P update --memory 64m --memory-swap 128m --cpus 0.5 c-update
  expect_mem_cpu cg_file c-update 67108864 50000
}
t_stop_term() {
  RUN -d --name c-stopterm "${SEC[@]}" $IMG sh -c 'trap "exit 42" TERM; echo ready; while :; do sleep 0.2; done'
  wait_for 20 sh -c "podman --runtime $RT logs c-stopterm | grep -q ready"
  P stop -t 20 c-stopterm
  expect_eq 42 "$(P inspect -f '{{.State.ExitCode}}' c-stopterm)" "exit code after TERM"
}
t_stop_kill_after_grace() {
  RUN -d --name c-stopkill "${SEC[@]}" $IMG sleep 1000
  local t0=$SECONDS
  P stop -t 2 c-stopkill
  expect_eq 137 "$(P inspect -f '{{.State.ExitCode}}' c-stopkill)" "exit code"
  [ $((SECONDS - t0)) -ge 2 ] || { echo "stopped before the grace period" >&2; return 1; }
}
t_kill_signal() {
  RUN -d --name c-kill "${SEC[@]}" $IMG sh -c 'trap "echo got-usr1; exit 5" USR1; echo ready; while :; do sleep 0.2; done'
  wait_for 20 sh -c "podman --runtime $RT logs c-kill | grep -q ready"
  P kill -s USR1 c-kill
  expect_eq 5 "$(P wait c-kill)" "exit code"
  expect_contains "$(P logs c-kill)" got-usr1
}
t_rm_force_running() {
  RUN -d --name c-rmf "${SEC[@]}" $IMG sleep 1000
  local pid
  pid=$(host_pid c-rmf)
  P rm -f -t 0 c-rmf
  expect_eq "" "$(P ps -aq --filter name=c-rmf)" "podman ps"
  wait_for 10 sh -c "! kill -0 $pid"
}
t_oom_killed() {
  # conmon 2.1.6 writes its OOM marker into its cwd instead of the container's
  # dir, so podman's State.OOMKilled stays false with any runtime (engines.md
  # §6.3): the marker in our cwd is what shows that conmon saw the OOM kill.
  local rc=0
  rm -f "$W/cwd/oom"
  RUN --name c-oom --memory 32m --memory-swap 32m "${SEC[@]}" $IMG sh -c 'tail /dev/zero' || rc=$?
  expect_eq 137 "$rc" "exit code"
  [ -e "$W/cwd/oom" ] || { echo "conmon saw no OOM event (no $W/cwd/oom)" >&2; return 1; }
}
t_pids_limit() {
  local out
  out=$(RUN --rm --pids-limit 5 "${SEC[@]}" $IMG sh -c 'for i in 1 2 3 4 5 6 7 8; do sleep 3 & done; wait' 2>&1 || true)
  expect_contains "$out" "can't fork"
}
t_read_only() {
  local out rc=0
  out=$(RUN --rm --read-only --read-only-tmpfs=false "${SEC[@]}" $IMG touch /x 2>&1) || rc=$?
  expect_contains "$out" "Read-only file system"
  expect_eq 1 "$rc" "exit code"
}
t_user() {
  expect_eq 1000:1000 "$(RUN --rm --user 1000:1000 "${SEC[@]}" $IMG sh -c 'echo $(id -u):$(id -g)')"
  expect_eq tester "$(RUN --rm --user tester "${SEC[@]}" $IMG id -un)"
}
t_workdir() { expect_eq /tmp "$(RUN --rm -w /tmp "${SEC[@]}" $IMG pwd)"; }
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
t_network_none() { expect_eq lo "$(RUN --rm --network none "${SEC[@]}" $IMG ls /sys/class/net)" "interfaces"; }
t_loopback_up() {
  # runc brings lo up in every new network namespace; programs rely on 127.0.0.1.
  expect_contains "$(RUN --rm --network none "${SEC[@]}" $IMG ip link show lo)" ",UP" "lo flags"
}
t_network_host() { expect_eq "$(readlink /proc/$$/ns/net)" "$(RUN --rm --network host "${SEC[@]}" $IMG readlink /proc/self/ns/net)" "net ns"; }
t_network_container() {
  RUN -d --name c-nettarget "${SEC[@]}" $IMG sleep 1000
  expect_eq "$(readlink "/proc/$(host_pid c-nettarget)/ns/net")" \
    "$(RUN --rm --network container:c-nettarget "${SEC[@]}" $IMG readlink /proc/self/ns/net)" "net ns"
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
  expect_eq "1234 2345" "$(RUN --rm --ulimit nofile=1234:2345 --ulimit nproc=1000:1000 "${SEC[@]}" $IMG sh -c 'echo $(ulimit -n) $(ulimit -Hn)')"
}
t_init() { expect_contains "$(RUN --rm --init "${SEC[@]}" $IMG cat /proc/1/cmdline | tr '\0' ' ')" "init"; }
t_run_tty() {
  local out
  out=$(tty_run "podman --runtime $RT run --cgroup-parent /$CG_PARENT --rm -it ${SEC[*]} $IMG sh -c 'tty; echo tty-done; sleep 1'")
  expect_contains "$out" /dev/pts/
  expect_contains "$out" tty-done
}

# ---------------------------------------------------------------- main
P import --change 'CMD=["/bin/sh"]' "$W/rootfs.tar" $IMG > "$W/import.log" 2>&1 || { cat "$W/import.log" >&2; die "podman import failed"; }

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
check network_none t_network_none
check loopback_up t_loopback_up
check network_host t_network_host
check network_container t_network_container
check bind_ro t_bind_ro
check bind_rw t_bind_rw
check tmpfs t_tmpfs
check ulimit t_ulimit
check init t_init
check run_tty_console_socket t_run_tty
skip restart_daemon "podman has no daemon"
e2e_summary
