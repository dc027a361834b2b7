//! The container's filesystem view: propagation, the rootfs bind, `mounts[]`,
//! devices, masked and read-only paths, and pivot_root.
//!
//! Everything here runs in the init process, inside the new mount namespace,
//! before pivot_root: paths are resolved in the rootfs with `safepath`, and the
//! host's /proc (still visible) names the resolved fds for mount(2).

pub mod copyup;
pub mod devices;
pub mod hostns;
pub mod options;
pub mod safepath;

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::{Mount, Spec};

use crate::error::{Context, Error, Result};
use safepath::{ensure_in_root, fd_path, open_in_root, Kind};

/// What the rootfs setup needs besides the spec.
pub struct RootfsCtx<'a> {
    /// The parsed config.
    pub spec: &'a Spec,
    /// Absolute host path of the rootfs.
    pub rootfs: &'a Path,
    /// Inside a user namespace: devices are bind mounts, not mknod.
    pub userns: bool,
    /// The container's cgroup directories on the host (for `cgroup` mounts).
    pub cgroup_paths: &'a [PathBuf],
    /// The container has no mount namespace of its own: it shares the
    /// runtime's (see `hostns`).
    pub host_mount_ns: bool,
}

/// Makes the mount tree private to the container and mounts the rootfs and
/// every `mounts[]` entry in order, then the devices.
pub fn prepare(ctx: &RootfsCtx) -> Result<File> {
    // Nothing mounted from here on may propagate back to the host. (In the
    // runtime's own mount namespace this would change the host's mounts:
    // there, everything goes under the rootfs bind below instead.)
    if !ctx.host_mount_ns {
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .ctx(|| "make / rslave")?;
    }
    // The rootfs path is resolved once; the bind and everything after it
    // work from that fd.
    let rootfs: OwnedFd = File::options()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(ctx.rootfs)
        .ctx(|| format!("open rootfs {}", ctx.rootfs.display()))?
        .into();
    let root = match safepath::bind_onto(rootfs.as_raw_fd(), &rootfs, true, 0, 0) {
        Ok(fd) => File::from(fd),
        // Before Linux 5.2: the classic bind, by the fd, then the new mount.
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
            let t = fd_path(&rootfs);
            mount(
                Some(t.as_str()),
                t.as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .ctx(|| format!("bind rootfs {}", ctx.rootfs.display()))?;
            File::open(ctx.rootfs).ctx(|| format!("open rootfs {}", ctx.rootfs.display()))?
        }
        Err(e) => return Err(e).ctx(|| format!("bind rootfs {}", ctx.rootfs.display())),
    };
    let mut dev_bind = false;
    for (i, m) in ctx.spec.mounts().iter().flatten().enumerate() {
        let dest = safepath::clean(m.destination());
        if dest == Path::new("dev") {
            dev_bind = is_bind(m);
        }
        mount_entry(ctx, &root, m, i)?;
    }
    if !dev_bind {
        devices::create_default(&root, ctx.spec, ctx.userns)?;
    }
    devices::create_config(&root, ctx.spec, ctx.userns)?;
    Ok(root)
}

fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

/// Flags a bind remount must keep: the kernel refuses to clear nosuid, nodev,
/// noexec or ro that a less privileged namespace inherited (they are locked).
fn locked_flags(target: &str) -> MsFlags {
    let Ok(st) = nix::sys::statvfs::statvfs(target) else {
        return MsFlags::empty();
    };
    use nix::sys::statvfs::FsFlags;
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (a, b) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(a) {
            out |= b;
        }
    }
    out
}

fn mount_entry(ctx: &RootfsCtx, root: &File, m: &Mount, i: usize) -> Result<()> {
    let where_ = format!("mounts[{i}]");
    let opts = options::parse(
        m.options().as_deref().unwrap_or_default(),
        &format!("{where_}.options"),
    )?;
    let typ = m.typ().clone().unwrap_or_default();
    let dest = m.destination();
    let what = || format!("{where_}: mount {} on {}", typ, dest.display());
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(ctx, root, m, &opts).ctx(what);
    }
    if opts.bind || typ == "bind" {
        // A bind mount takes no filesystem data. A bare word we do not know
        // may be a misspelt flag (`noexce`): dropping it silently could leave
        // the mount less restricted than asked, so it is an error. A
        // `key=value` filesystem parameter (`mode=755`, which runtime-tools
        // and some engines put on binds) can restrict nothing here: the
        // kernel ignores it for a bind, as runc and crun do; we say so.
        let (params, words): (Vec<&str>, Vec<&str>) = opts
            .data
            .split(',')
            .filter(|o| !o.is_empty())
            .partition(|o| o.contains('='));
        if !words.is_empty() {
            return Err(Error::msg(format!(
                "{where_}.options: unknown option(s) for a bind mount: {}",
                words.join(",")
            )));
        }
        if !params.is_empty() {
            log::warn!(
                "{where_}.options: {} ignored: a bind mount takes no filesystem parameters",
                params.join(",")
            );
        }
        let src = m
            .source()
            .clone()
            .ok_or_else(|| Error::msg(format!("{where_}.source: a bind mount needs a source")))?;
        // The source is opened once (a host path: symlinks are followed, as
        // runc does) and mounted from that fd, with its flags, onto the
        // target fd: no path is resolved twice.
        let sfd: OwnedFd = File::options()
            .read(true)
            .custom_flags(libc::O_PATH)
            .open(&src)
            .ctx(|| format!("{where_}.source {}", src.display()))?
            .into();
        let meta = nix::sys::stat::fstat(sfd.as_raw_fd())
            .ctx(|| format!("{where_}.source {}", src.display()))?;
        let kind = if meta.st_mode & libc::S_IFMT == libc::S_IFDIR {
            Kind::Dir
        } else {
            Kind::File
        };
        let target = ensure_in_root(root.as_raw_fd(), dest, kind).ctx(what)?;
        // Like a remount with the listed flags: "rw" (no ro) makes a
        // read-only source writable; nosuid/nodev/noexec are only added.
        let extra = opts.flags - MsFlags::MS_REMOUNT;
        let set = mount_attrs(extra);
        let clear = if !extra.is_empty() && set & safepath::attr::RDONLY == 0 {
            safepath::attr::RDONLY
        } else {
            0
        };
        let tree = match safepath::bind_onto(sfd.as_raw_fd(), &target, opts.recursive, set, clear) {
            Ok(tree) => tree,
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                legacy_bind(&fd_path(&sfd), root, dest, &target, opts.recursive, extra).ctx(what)?
            }
            Err(e) => return Err(e).ctx(what),
        };
        let t = fd_path(&tree);
        for p in &opts.propagation {
            mount(None::<&str>, t.as_str(), None::<&str>, *p, None::<&str>)
                .ctx(|| format!("{}: set propagation {p:?}", what()))?;
        }
        return Ok(());
    }
    if typ == "proc" || typ == "sysfs" {
        // CVE-2019-19921, CVE-2023-27561: a symlink there would take the
        // mount (and everything later done through it) elsewhere.
        match safepath::open_in_root_nofollow(root.as_raw_fd(), dest, libc::O_PATH) {
            Ok(fd) if !std::fs::metadata(fd_path(&fd)).is_ok_and(|m| m.is_dir()) => {
                return Err(Error::msg(format!(
                    "{}: {typ} must be mounted on ordinary directory",
                    what()
                )))
            }
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(Error::msg(format!(
                    "{}: {typ} must be mounted on ordinary directory (a symlink is in the way)",
                    what()
                )))
            }
            _ => {}
        }
    }
    let target = ensure_in_root(root.as_raw_fd(), dest, Kind::Dir).ctx(what)?;
    let t = fd_path(&target);
    let src = m.source().clone().unwrap_or_else(|| PathBuf::from(&typ));
    let data = crate::security::lsm::mount_data(ctx.spec, &typ, &opts.data);
    let data = (!data.is_empty()).then_some(data.as_str());
    let res = mount(Some(&src), t.as_str(), Some(typ.as_str()), opts.flags, data);
    match res {
        Ok(()) => {}
        // Without a new network namespace sysfs cannot be mounted afresh:
        // fall back to the host's, bound read-only-as-asked like runc does.
        Err(nix::errno::Errno::EPERM) if typ == "sysfs" => {
            mount(
                Some("/sys"),
                t.as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .ctx(what)?;
            if opts.flags.contains(MsFlags::MS_RDONLY) {
                let target = open_in_root(root.as_raw_fd(), dest, libc::O_PATH).ctx(what)?;
                let t = fd_path(&target);
                let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | opts.flags | locked_flags(&t);
                mount(None::<&str>, t.as_str(), None::<&str>, flags, None::<&str>).ctx(what)?;
            }
        }
        Err(e) => return Err(e).ctx(what),
    }
    if opts.tmpcopyup {
        if typ != "tmpfs" {
            return Err(Error::msg(format!("{}: tmpcopyup needs a tmpfs", what())));
        }
        // `target` still names the directory under the new tmpfs.
        let mounted = open_in_root(root.as_raw_fd(), dest, libc::O_PATH).ctx(what)?;
        copyup::copy_tree(Path::new(&t), Path::new(&fd_path(&mounted)))
            .ctx(|| format!("{}: tmpcopyup", what()))?;
    }
    set_propagation(root, dest, &opts.propagation).ctx(what)
}

/// Kernels before 5.12 (no mount_setattr): bind with mount(2), then remount
/// the new mount with `flags`. The remount needs the new mount, which the
/// target fd does not name: only the last component is looked up again, in
/// its parent resolved inside the root, without following a symlink.
fn legacy_bind(
    src: &str,
    root: &File,
    dest: &Path,
    target: &OwnedFd,
    recursive: bool,
    flags: MsFlags,
) -> Result<OwnedFd> {
    let mut bind = MsFlags::MS_BIND;
    if recursive {
        bind |= MsFlags::MS_REC;
    }
    let t = fd_path(target);
    mount(Some(src), t.as_str(), None::<&str>, bind, None::<&str>).ctx(|| "bind")?;
    let rel = safepath::clean(dest);
    let parent = open_in_root(
        root.as_raw_fd(),
        rel.parent().unwrap_or(Path::new("")),
        libc::O_PATH | libc::O_DIRECTORY,
    )
    .ctx(|| "reopen parent")?;
    let name = rel.file_name().unwrap_or_default();
    let raw = nix::fcntl::openat(
        Some(parent.as_raw_fd()),
        name,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| "reopen the new mount")?;
    // SAFETY: openat just returned this fd, owned from here on.
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
    if !flags.is_empty() {
        let t = fd_path(&fd);
        let f = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags | locked_flags(&t);
        mount(None::<&str>, t.as_str(), None::<&str>, f, None::<&str>).ctx(|| "remount")?;
    }
    Ok(fd)
}

/// The mount_setattr attributes for mount(2) flags of a bind mount.
fn mount_attrs(f: MsFlags) -> u64 {
    use safepath::attr;
    let mut a = 0;
    for (flag, bit) in [
        (MsFlags::MS_RDONLY, attr::RDONLY),
        (MsFlags::MS_NOSUID, attr::NOSUID),
        (MsFlags::MS_NODEV, attr::NODEV),
        (MsFlags::MS_NOEXEC, attr::NOEXEC),
        (MsFlags::MS_NODIRATIME, attr::NODIRATIME),
    ] {
        if f.contains(flag) {
            a |= bit;
        }
    }
    if f.contains(MsFlags::MS_NOATIME) {
        a |= attr::NOATIME;
    } else if f.contains(MsFlags::MS_STRICTATIME) {
        a |= attr::STRICTATIME;
    } else if f.contains(MsFlags::MS_RELATIME) {
        a |= attr::RELATIME;
    }
    a
}

fn set_propagation(root: &File, dest: &Path, props: &[MsFlags]) -> Result<()> {
    if props.is_empty() {
        return Ok(());
    }
    let target = open_in_root(root.as_raw_fd(), dest, libc::O_PATH).ctx(|| "reopen target")?;
    let t = fd_path(&target);
    for p in props {
        mount(None::<&str>, t.as_str(), None::<&str>, *p, None::<&str>)
            .ctx(|| format!("set propagation {p:?}"))?;
    }
    Ok(())
}

/// A `cgroup` mount shows the container only its own cgroups: on cgroup v2 a
/// fresh cgroup2 mount (rooted at the container's cgroup namespace); on v1 a
/// tmpfs with a bind of the container's directory of each hierarchy.
fn mount_cgroup(
    ctx: &RootfsCtx,
    root: &File,
    m: &Mount,
    opts: &options::MountOptions,
) -> Result<()> {
    let dest = m.destination();
    let target = ensure_in_root(root.as_raw_fd(), dest, Kind::Dir).ctx(|| "create mount point")?;
    let t = fd_path(&target);
    if crate::cgroups::is_unified() {
        return mount(
            Some("cgroup2"),
            t.as_str(),
            Some("cgroup2"),
            opts.flags,
            None::<&str>,
        )
        .ctx(|| "mount cgroup2");
    }
    let base = opts.flags - MsFlags::MS_RDONLY;
    mount(
        Some("tmpfs"),
        t.as_str(),
        Some("tmpfs"),
        base,
        Some("mode=755"),
    )
    .ctx(|| "mount tmpfs for cgroup v1")?;
    for dir in ctx.cgroup_paths {
        // The hierarchy's mount name, e.g. /sys/fs/cgroup/memory/... -> memory.
        let Some(name) = dir
            .strip_prefix("/sys/fs/cgroup")
            .ok()
            .and_then(|r| r.components().next())
        else {
            continue;
        };
        let sub = dest.join(name.as_os_str());
        let st = ensure_in_root(root.as_raw_fd(), &sub, Kind::Dir)
            .ctx(|| format!("create {}", sub.display()))?;
        let s = fd_path(&st);
        mount(
            Some(dir),
            s.as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .ctx(|| format!("bind cgroup {}", dir.display()))?;
        // Reopen: the old fd names the directory under the new mount.
        let st = open_in_root(root.as_raw_fd(), &sub, libc::O_PATH).ctx(|| "reopen cgroup bind")?;
        let s = fd_path(&st);
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | opts.flags | locked_flags(&s);
        mount(None::<&str>, s.as_str(), None::<&str>, flags, None::<&str>)
            .ctx(|| format!("remount cgroup {}", dir.display()))?;
    }
    // Co-mounted controllers are reachable by each name, as on the host.
    for (link, to) in [
        ("cpu", "cpu,cpuacct"),
        ("cpuacct", "cpu,cpuacct"),
        ("net_cls", "net_cls,net_prio"),
        ("net_prio", "net_cls,net_prio"),
    ] {
        let host = Path::new("/sys/fs/cgroup").join(link);
        if host.is_symlink() {
            let dfd = open_in_root(root.as_raw_fd(), dest, libc::O_PATH | libc::O_DIRECTORY)
                .ctx(|| "reopen cgroup mount")?;
            let _ = nix::unistd::symlinkat(to, Some(dfd.as_raw_fd()), link);
        }
    }
    if opts.flags.contains(MsFlags::MS_RDONLY) {
        let target =
            open_in_root(root.as_raw_fd(), dest, libc::O_PATH).ctx(|| "reopen cgroup mount")?;
        let t = fd_path(&target);
        let flags = MsFlags::MS_REMOUNT | opts.flags;
        mount(None::<&str>, t.as_str(), None::<&str>, flags, None::<&str>)
            .ctx(|| "remount cgroup tmpfs read-only")?;
    }
    Ok(())
}

/// Hides `linux.maskedPaths` (a read-only empty tmpfs on directories,
/// /dev/null on files) and makes `linux.readonlyPaths` read-only.
pub fn mask_and_protect(root: &File, spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    // CVE-2025-31133: the mask source is the runtime's /dev/null (this runs
    // before pivot_root), checked to be the null device, and mounted from
    // that fd, so nothing can substitute another file for it.
    let null = File::options()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
        .open("/dev/null")
        .ctx(|| "open /dev/null")?;
    let st = nix::sys::stat::fstat(null.as_raw_fd()).ctx(|| "stat /dev/null")?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != nix::sys::stat::makedev(1, 3) {
        return Err(Error::msg("/dev/null is not the null device (1:3)"));
    }
    let null = OwnedFd::from(null);
    let null_src = fd_path(&null);
    for p in linux
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
    {
        let fd = match open_in_root(
            root.as_raw_fd(),
            Path::new(p),
            libc::O_PATH | libc::O_NOFOLLOW,
        ) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(e).ctx(|| format!("linux.maskedPaths: {p}")),
        };
        let t = fd_path(&fd);
        let is_dir = std::fs::metadata(&t).map(|m| m.is_dir()).unwrap_or(false);
        let r = if is_dir {
            mount(
                Some("tmpfs"),
                t.as_str(),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                Some("size=0k"),
            )
        } else {
            mount(
                Some(null_src.as_str()),
                t.as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        };
        r.ctx(|| format!("linux.maskedPaths: mask {p}"))?;
    }
    for p in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
    {
        let fd = match open_in_root(root.as_raw_fd(), Path::new(p), libc::O_PATH) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(e).ctx(|| format!("linux.readonlyPaths: {p}")),
        };
        // The path is resolved once: a read-only copy of the tree at the fd
        // is mounted onto the same fd (youki GHSA-3q8j-pf29-vwv8 resolved it
        // again for the remount, and a race left it writable).
        match safepath::bind_readonly_onto(&fd) {
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                let t = fd_path(&fd);
                legacy_bind(&t, root, Path::new(p), &fd, true, MsFlags::MS_RDONLY).map(drop)
            }
            r => r.ctx(|| "bind read-only"),
        }
        .ctx(|| format!("linux.readonlyPaths: {p}"))?;
    }
    Ok(())
}

/// Makes the rootfs the process's `/`: pivot_root, or with `no_pivot` a move
/// mount and chroot (for ramfs roots where pivot_root is impossible). In the
/// runtime's mount namespace both would move the host's root: chroot only.
pub fn enter(root: File, no_pivot: bool, host_mount_ns: bool) -> Result<()> {
    nix::unistd::fchdir(root.as_raw_fd()).ctx(|| "chdir to rootfs")?;
    if host_mount_ns {
        nix::unistd::chroot(".").ctx(|| "chroot to rootfs")?;
    } else if no_pivot {
        mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
            .ctx(|| "move rootfs to /")?;
        nix::unistd::chroot(".").ctx(|| "chroot to rootfs")?;
    } else {
        // pivot_root(".", ".") stacks the old root on top of the new one;
        // unmounting "." then drops it, with no directory needed for it.
        nix::unistd::pivot_root(".", ".").ctx(|| "pivot_root")?;
        // rslave first, so the lazy unmount does not propagate to the host.
        mount(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .ctx(|| "make old root rslave")?;
        umount2(".", MntFlags::MNT_DETACH).ctx(|| "unmount old root")?;
    }
    nix::unistd::chdir("/").ctx(|| "chdir /")?;
    Ok(())
}

/// After entering the rootfs: `linux.rootfsPropagation` and `root.readonly`.
pub fn finish(spec: &Spec) -> Result<()> {
    if let Some(p) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
        .filter(|p| !p.is_empty())
    {
        let flags = options::propagation(p).ok_or_else(|| Error::Config {
            file: "config.json".into(),
            path: "linux.rootfsPropagation".into(),
            msg: format!("unknown mode {p:?}"),
        })?;
        mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
            .ctx(|| format!("linux.rootfsPropagation: set {p}"))?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked_flags("/");
        mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
            .ctx(|| "root.readonly: remount / read-only")?;
    }
    Ok(())
}
