# shellcheck shell=bash
# Helpers shared by the hack/ scripts; source it, do not run it.

# Repo root = parent of the directory holding this file, whoever sources it.
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export REPO_ROOT

die() { echo "error: $*" >&2; exit 1; }
info() { echo "--- $*" >&2; }
banner() { printf '\n==== %s ====\n' "$*" >&2; }

require_root() {
  # Namespaces, mounts and cgroups need real root; fail early with a clear message.
  [ "$(id -u)" -eq 0 ] || die "${0##*/} must be run as root (try: sudo $0${*:+ $*})"
}

# True if PKG is installed according to dpkg.
pkg_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# busybox is copied into a rootfs without a libc, so it must be the static build.
busybox_ok() {
  local bb=${1:-/bin/busybox}
  # ldd fails on static binaries ("not a dynamic executable").
  [ -x "$bb" ] && ! ldd "$bb" >/dev/null 2>&1
}

_APT_UPDATED=0
# apt_install PKG...: install the given packages, running `apt-get update` at most once.
# Waits for a concurrent apt/dpkg (e.g. a background update) instead of failing on the lock.
apt_install() {
  [ $# -gt 0 ] || return 0
  [ "$(id -u)" -eq 0 ] || die "need root to install: $* (or install them yourself)"
  command -v apt-get >/dev/null || die "apt-get not found; install manually: $*"
  local apt=(apt-get -o DPkg::Lock::Timeout=600 -q) try
  export DEBIAN_FRONTEND=noninteractive
  if [ "$_APT_UPDATED" = 0 ]; then
    info "apt-get update"
    for try in 1 2 3; do
      "${apt[@]}" update >&2 && break
      [ "$try" = 3 ] && die "apt-get update failed"
      sleep 10   # the lists lock is not covered by DPkg::Lock::Timeout on every apt version
    done
    _APT_UPDATED=1
  fi
  info "apt-get install $*"
  for try in 1 2 3; do
    "${apt[@]}" install -y --no-install-recommends "$@" >&2 && return 0
    [ "$try" = 3 ] && die "apt-get install $* failed"
    sleep 10
  done
}

# ensure_pkgs PKG...: install only the packages that are missing.
ensure_pkgs() {
  local p missing=()
  for p in "$@"; do
    case $p in
      busybox-static) busybox_ok /bin/busybox || missing+=("$p") ;;
      *) pkg_installed "$p" || missing+=("$p") ;;
    esac
  done
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
}

# Make cargo findable under sudo / a login shell without rustup's PATH tweak.
ensure_cargo() {
  if ! command -v cargo >/dev/null; then
    local d
    for d in "${CARGO_HOME:-$HOME/.cargo}/bin" /root/.cargo/bin /usr/local/cargo/bin; do
      if [ -x "$d/cargo" ]; then
        PATH=$d:$PATH; export PATH
        # rustup's proxy finds its toolchains via HOME; help it when HOME is not the owner's.
        if [ -z "${RUSTUP_HOME:-}" ] && [ -d "${d%/.cargo/bin}/.rustup" ]; then
          export RUSTUP_HOME=${d%/.cargo/bin}/.rustup
        fi
        break
      fi
    done
  fi
  command -v cargo >/dev/null || die "cargo not found: install a Rust toolchain >= 1.80 (e.g. via https://rustup.rs; Debian 12's own cargo/rustc 1.63 is too old), then re-run"
}

# Packages the build itself needs: the libseccomp crate links libseccomp via pkg-config.
BUILD_PKGS=(libseccomp-dev pkg-config)

# The release binary is linked statically (glibc's and libseccomp's .a files, from
# libc6-dev and libseccomp-dev): a start then skips the dynamic loader, which the
# CVE-2019-5736 re-exec pays twice (measured in docs/performance.md). Only the final
# binary gets +crt-static: in RUSTFLAGS or .cargo/config.toml it would also reach the
# proc-macro crates, which the gnu target cannot build statically.
# MYDOCKER_DYNAMIC=1 builds the plain `cargo build --release` binary instead.
cargo_build_release() {
  ensure_pkgs "${BUILD_PKGS[@]}"
  ensure_cargo
  if [ "${MYDOCKER_DYNAMIC:-0}" = 1 ]; then
    (cd "$REPO_ROOT" && cargo build --release)
  else
    (cd "$REPO_ROOT" && LIBSECCOMP_LINK_TYPE=static \
      LIBSECCOMP_LIB_PATH="$(pkg-config --variable=libdir libseccomp)" \
      cargo rustc --release --bin mydocker -- -C target-feature=+crt-static)
  fi
  MYDOCKER_BIN=$REPO_ROOT/target/release/mydocker
  [ -x "$MYDOCKER_BIN" ] || die "build did not produce $MYDOCKER_BIN"
  export MYDOCKER_BIN
}
