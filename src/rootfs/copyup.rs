//! `tmpcopyup`: a tmpfs mounted over a directory of the image starts with a
//! copy of what that directory held (podman's `--tmpfs` default), with modes,
//! owners, symlinks and device nodes kept.

use std::fs;
use std::io;
use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
use std::path::Path;

use nix::sys::stat::{makedev, mknod, Mode, SFlag};

/// Copies the contents of `src` into the existing directory `dst`, and the
/// mode and owner of `src` onto `dst`. Symlinks are copied, never followed.
pub fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    copy_children(src, dst)?;
    // The top paths may be /proc/self/fd magic links: follow them here.
    let meta = fs::metadata(src)?;
    std::os::unix::fs::chown(dst, Some(meta.uid()), Some(meta.gid()))?;
    fs::set_permissions(dst, fs::Permissions::from_mode(meta.mode() & 0o7777))
}

fn copy_children(src: &Path, dst: &Path) -> io::Result<()> {
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let m = fs::symlink_metadata(&from)?;
        let ft = m.file_type();
        if ft.is_dir() {
            fs::create_dir(&to)?;
            copy_children(&from, &to)?;
            finish(&to, &m)?;
            continue;
        }
        if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
        } else if ft.is_file() {
            fs::copy(&from, &to)?;
        } else {
            let kind = SFlag::from_bits_truncate(m.mode() & libc::S_IFMT);
            let rdev = m.rdev();
            let dev = makedev(libc::major(rdev) as u64, libc::minor(rdev) as u64);
            mknod(&to, kind, Mode::from_bits_truncate(m.mode() & 0o7777), dev)
                .map_err(io::Error::from)?;
        }
        finish(&to, &m)?;
    }
    Ok(())
}

/// Owner, then mode (chown clears setuid bits), never through a symlink.
fn finish(p: &Path, m: &fs::Metadata) -> io::Result<()> {
    lchown(p, Some(m.uid()), Some(m.gid()))?;
    if !m.file_type().is_symlink() {
        fs::set_permissions(p, fs::Permissions::from_mode(m.mode() & 0o7777))?;
    }
    Ok(())
}
