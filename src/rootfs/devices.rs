//! Device nodes in the container's /dev: the defaults every container gets
//! (null, zero, full, random, urandom, tty and the standard symlinks) and the
//! config's `linux.devices`.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, Mode, SFlag};
use oci_spec::runtime::{LinuxDeviceType, Spec};

use super::safepath::{ensure_in_root, fd_path, Kind};
use crate::error::{Context, Error, Result};

const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

const DEFAULT_LINKS: &[(&str, &str)] = &[
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

/// Creates the default device nodes and symlinks in the rootfs's /dev.
pub fn create_default(root: &File, userns: bool) -> Result<()> {
    let dev =
        ensure_in_root(root.as_raw_fd(), Path::new("/dev"), Kind::Dir).ctx(|| "create /dev")?;
    let devdir = File::open(fd_path(&dev)).ctx(|| "open /dev")?;
    for (name, major, minor) in DEFAULT_DEVICES {
        make_node(
            root,
            &devdir,
            &Path::new("/dev").join(name),
            name,
            SFlag::S_IFCHR,
            *major,
            *minor,
            0o666,
            None,
            userns,
        )?;
    }
    for (name, to) in DEFAULT_LINKS {
        match nix::unistd::symlinkat(*to, Some(devdir.as_raw_fd()), *name) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(e).ctx(|| format!("symlink /dev/{name}")),
        }
    }
    if Path::new("/proc/kcore").exists() {
        let _ = nix::unistd::symlinkat("/proc/kcore", Some(devdir.as_raw_fd()), "core");
    }
    Ok(())
}

/// Creates the nodes listed in `linux.devices`.
pub fn create_config(root: &File, spec: &Spec, userns: bool) -> Result<()> {
    let list = spec.linux().as_ref().and_then(|l| l.devices().as_ref());
    for (i, d) in list.into_iter().flatten().enumerate() {
        let path = d.path();
        if !path.is_absolute() {
            return Err(Error::msg(format!(
                "linux.devices[{i}].path: must be absolute"
            )));
        }
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(Error::msg(format!(
                    "linux.devices[{i}].type: \"a\" is not a device type"
                )))
            }
        };
        let parent = path.parent().unwrap_or(Path::new("/"));
        let name = path
            .file_name()
            .ok_or_else(|| Error::msg(format!("linux.devices[{i}].path: no file name")))?;
        let pfd = ensure_in_root(root.as_raw_fd(), parent, Kind::Dir)
            .ctx(|| format!("linux.devices[{i}]: create {}", parent.display()))?;
        let pdir = File::open(fd_path(&pfd)).ctx(|| format!("linux.devices[{i}]: open parent"))?;
        let mode = d.file_mode().unwrap_or(0o666);
        let owner = Some((d.uid().unwrap_or(0), d.gid().unwrap_or(0)));
        make_node(
            root,
            &pdir,
            path,
            &name.to_string_lossy(),
            kind,
            d.major() as u64,
            d.minor() as u64,
            mode,
            owner,
            userns,
        )
        .ctx(|| format!("linux.devices[{i}]"))?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn make_node(
    root: &File,
    dir: &File,
    path: &Path,
    name: &str,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    owner: Option<(u32, u32)>,
    userns: bool,
) -> Result<()> {
    let cname = CString::new(name).map_err(|_| Error::msg("bad device name"))?;
    // Replace whatever the rootfs had there: the config decides.
    // SAFETY: valid dirfd and NUL-terminated name.
    unsafe { libc::unlinkat(dir.as_raw_fd(), cname.as_ptr(), 0) };
    let perm = Mode::from_bits_truncate(mode & 0o7777);
    let made = if userns {
        Err(nix::errno::Errno::EPERM)
    } else {
        nix::sys::stat::mknodat(
            Some(dir.as_raw_fd()),
            name,
            kind,
            perm,
            makedev(major, minor),
        )
    };
    match made {
        Ok(()) => {
            // mknod applies the umask; the config's mode is exact.
            nix::sys::stat::fchmodat(
                Some(dir.as_raw_fd()),
                name,
                perm,
                nix::sys::stat::FchmodatFlags::NoFollowSymlink,
            )
            .or_else(|e| {
                if e == nix::errno::Errno::EOPNOTSUPP {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .ctx(|| format!("chmod {}", path.display()))?;
            if let Some((uid, gid)) = owner {
                nix::unistd::fchownat(
                    Some(dir.as_raw_fd()),
                    name,
                    Some(uid.into()),
                    Some(gid.into()),
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .ctx(|| format!("chown {}", path.display()))?;
            }
            Ok(())
        }
        // In a user namespace mknod is not allowed: bind the host's node.
        Err(nix::errno::Errno::EPERM) => {
            let host = Path::new("/dev").join(name);
            let src = if path.starts_with("/dev") && host.exists() {
                host
            } else {
                path.to_path_buf()
            };
            let target = ensure_in_root(root.as_raw_fd(), path, Kind::File)
                .ctx(|| format!("create {}", path.display()))?;
            mount(
                Some(&src),
                fd_path(&target).as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .ctx(|| format!("bind {} for {}", src.display(), path.display()))?;
            Ok(())
        }
        Err(e) => Err(e).ctx(|| format!("mknod {}", path.display())),
    }
}
