//! runc's command line, as clap definitions. This layer only parses; `main`
//! dispatches to the container operations.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// The state directory when `--root` is not given.
pub const DEFAULT_ROOT: &str = "/run/mydocker";

/// Global flags, accepted before or after the subcommand like runc's.
#[derive(Parser, Debug)]
#[command(
    name = "mydocker",
    version = concat!(env!("CARGO_PKG_VERSION"), "\nspec: ", "1.3.0"),
    about = "An OCI container runtime, a drop-in replacement for runc"
)]
pub struct Cli {
    /// Directory holding the containers' state.
    #[arg(long, global = true, default_value = DEFAULT_ROOT)]
    pub root: PathBuf,
    /// Write log lines to this file instead of stderr.
    #[arg(long, global = true)]
    pub log: Option<String>,
    /// Log line format.
    #[arg(long = "log-format", global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log debug messages.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use the systemd cgroup driver: the container's cgroup is a transient scope unit.
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for runc compatibility (`true`, `false` or `auto`).
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    /// The operation.
    #[command(subcommand)]
    pub command: Command,
}

/// Log line formats, as runc names them.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// logrus-style text.
    Text,
    /// One JSON object per line with `level`, `msg`, `time`.
    Json,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container from a bundle; its process waits for `start`.
    Create(CreateArgs),
    /// Run the user process of a created container.
    Start(IdArg),
    /// Print the state of a container as JSON.
    State(IdArg),
    /// Send a signal to the container's init process.
    Kill(KillArgs),
    /// Delete a stopped container (any with --force) and its resources.
    Delete(DeleteArgs),
    /// Create and start a container, and wait for it unless --detach.
    Run(RunArgs),
    /// List the containers in the state directory.
    List(ListArgs),
    /// Write a default config.json into a bundle directory.
    Spec(SpecArgs),
    /// Run a new process inside a container.
    Exec(Box<ExecArgs>),
    /// Suspend every process of the container (cgroup freezer).
    Pause(IdArg),
    /// Resume a paused container.
    Resume(IdArg),
    /// List the processes of a container.
    Ps(PsArgs),
    /// Change the resource limits of a running container.
    Update(Box<UpdateArgs>),
    /// Print a container's statistics and OOM events as JSON lines.
    Events(EventsArgs),
    /// Print the OCI features JSON: what this runtime implements.
    Features,
}

/// A lone container id.
#[derive(Args, Debug)]
pub struct IdArg {
    /// Container id.
    pub id: String,
}

/// Flags shared by `create` and `run`.
#[derive(Args, Debug, Clone)]
pub struct CreateOpts {
    /// Path to the bundle directory (default: the current directory).
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Write the container's host pid to this file.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket to send the pty master to (needs process.terminal).
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Move the rootfs onto / and chroot instead of pivot_root.
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring for the container.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N extra file descriptors (3..3+N) to the container process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
}

/// `create` arguments.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Container id.
    pub id: String,
    #[command(flatten)]
    pub opts: CreateOpts,
}

/// `run` arguments.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Container id.
    pub id: String,
    #[command(flatten)]
    pub opts: CreateOpts,
    /// Return once the container is started.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits.
    #[arg(long)]
    pub keep: bool,
    /// Do not become a subreaper while waiting for the container.
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
}

/// `kill` arguments.
#[derive(Args, Debug)]
pub struct KillArgs {
    /// Container id.
    pub id: String,
    /// Signal name (`KILL`, `SIGKILL`) or number; default SIGTERM.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
    /// Signal every process in the container's cgroup.
    #[arg(short, long)]
    pub all: bool,
}

/// `delete` arguments.
#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Container id.
    pub id: String,
    /// Kill the container first if it is not stopped.
    #[arg(short, long)]
    pub force: bool,
}

/// `list` arguments.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub format: ListFormat,
    /// Print only the ids.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `list --format` values.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFormat {
    /// Aligned columns.
    Table,
    /// A JSON array of states.
    Json,
}

/// `spec` arguments.
#[derive(Args, Debug)]
pub struct SpecArgs {
    /// Bundle directory to write config.json into (the global `--rootless`
    /// makes a rootless config).
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
}

/// `exec` arguments: runc's flags. Everything after the container id is the
/// command (`exec ID sh -c 'echo hi'`).
#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Container id.
    pub id: String,
    /// The command to run and its arguments (unless --process).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// Path to a process.json (an OCI `process` object) to run.
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Return once the process runs instead of waiting for it.
    #[arg(short, long)]
    pub detach: bool,
    /// Write the process's host pid to this file.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket to send the pty master to (needs a terminal and --detach).
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Allocate a pseudo-terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Working directory in the container.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Set an environment variable (KEY=VALUE); repeatable.
    #[arg(short, long)]
    pub env: Vec<String>,
    /// UID[:GID] to run as.
    #[arg(short, long)]
    pub user: Option<String>,
    /// An additional group id; repeatable.
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Add a capability to the bounding, effective and permitted sets; repeatable.
    #[arg(short, long)]
    pub cap: Vec<String>,
    /// Set no_new_privs for the process.
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Pass N extra file descriptors (3..3+N) to the process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// SELinux label for the process (not supported: fails).
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// AppArmor profile for the process (not supported: fails).
    #[arg(long)]
    pub apparmor: Option<String>,
    /// Join a sub-cgroup of the container: PATH, or CONTROLLER[,...]:PATH (v1).
    #[arg(long)]
    pub cgroup: Vec<String>,
    /// Allow exec into a paused container.
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
}

/// `ps` arguments.
#[derive(Args, Debug)]
pub struct PsArgs {
    /// Output format: `table` runs ps(1), `json` prints the pids.
    #[arg(short, long, value_enum, default_value = "table")]
    pub format: ListFormat,
    /// Container id.
    pub id: String,
    /// Arguments for ps(1) (default `-ef`), after the id or after `--`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// `update` arguments: runc's flags. Values stay strings here; the update
/// operation parses them (sizes like `64M` for the memory flags).
#[derive(Args, Debug, Default)]
pub struct UpdateArgs {
    /// Container id.
    pub id: String,
    /// A LinuxResources JSON file, or `-` for standard input.
    #[arg(short, long)]
    pub resources: Option<String>,
    /// Block I/O weight (10-1000).
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<String>,
    /// CFS period in microseconds.
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<String>,
    /// CFS quota in microseconds.
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<String>,
    /// CFS burst in microseconds.
    #[arg(long = "cpu-burst")]
    pub cpu_burst: Option<String>,
    /// CPU shares.
    #[arg(long = "cpu-share", alias = "cpu-shares")]
    pub cpu_share: Option<String>,
    /// Realtime period in microseconds.
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<String>,
    /// Realtime runtime in microseconds.
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<String>,
    /// 1 for SCHED_IDLE, 0 for the default.
    #[arg(long = "cpu-idle")]
    pub cpu_idle: Option<String>,
    /// CPUs to use.
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to use.
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Kernel memory limit (v1 kernels that still honour it).
    #[arg(long = "kernel-memory")]
    pub kernel_memory: Option<String>,
    /// Kernel TCP buffer limit (v1).
    #[arg(long = "kernel-memory-tcp")]
    pub kernel_memory_tcp: Option<String>,
    /// Memory limit.
    #[arg(long)]
    pub memory: Option<String>,
    /// Memory soft limit.
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit; -1 for unlimited swap.
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    /// Maximum number of pids.
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<String>,
    /// Intel RDT L3 cache schema (not supported).
    #[arg(long = "l3-cache-schema")]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT memory bandwidth schema (not supported).
    #[arg(long = "mem-bw-schema")]
    pub mem_bw_schema: Option<String>,
}

/// `events` arguments.
#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Container id.
    pub id: String,
    /// How often to print statistics (Go duration syntax: 5s, 500ms, 1m).
    #[arg(long, default_value = "5s")]
    pub interval: String,
    /// Print the statistics once and exit.
    #[arg(long)]
    pub stats: bool,
}
