#!/bin/sh
# Makes sure the cross toolchain of a platform is present before Maven cross-builds it.
#   native/cross/ensure-toolchain.sh <platform>        (linux-aarch64; the host platform: nothing to do)
# linux-aarch64 needs Debian/Ubuntu's aarch64-linux-gnu-g++ and qemu-aarch64 (with its sysroot
# /usr/aarch64-linux-gnu, which the g++ package brings). When they are missing and this runs as
# root on a system with apt-get, it installs g++-aarch64-linux-gnu and qemu-user non-interactively;
# otherwise it fails, naming the packages and the Maven property that skips the cross build.
set -eu

platform="${1:-}"
skip_hint="or skip the cross build with -Dseq4j.cross.skip=true"

case "$platform" in
  linux-aarch64)
    triple=aarch64-linux-gnu
    compiler="$triple-g++"
    emulator=qemu-aarch64
    packages="g++-aarch64-linux-gnu qemu-user"
    ;;
  linux-x86_64|macosx-arm64|windows-x86_64)
    # built natively on their own machines (CI); nothing to cross-compile
    echo "ensure-toolchain: $platform is built natively, no cross toolchain needed"
    exit 0
    ;;
  *)
    echo "usage: $0 linux-aarch64" >&2
    exit 2
    ;;
esac

missing() {
  command -v "$compiler" >/dev/null 2>&1 || return 0
  command -v "$emulator" >/dev/null 2>&1 || command -v "$emulator-static" >/dev/null 2>&1 || return 0
  [ -e "/usr/$triple/lib/libc.so.6" ] || return 0
  return 1
}

if ! missing; then
  echo "ensure-toolchain: $platform: $(command -v "$compiler"), $(command -v "$emulator" || command -v "$emulator-static")"
  exit 0
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-toolchain: installing $packages (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null || echo "ensure-toolchain: apt-get update failed, trying the cached lists" >&2
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $packages >/dev/null
  if ! missing; then
    echo "ensure-toolchain: $platform: $(command -v "$compiler"), $(command -v "$emulator" || command -v "$emulator-static")"
    exit 0
  fi
  echo "ensure-toolchain: $packages installed, but $compiler or $emulator is still missing" >&2
  exit 1
fi

echo "ensure-toolchain: the $platform cross build needs $compiler and $emulator." >&2
echo "  Install them (Debian/Ubuntu, as root): apt-get install $packages" >&2
echo "  $skip_hint" >&2
exit 1
