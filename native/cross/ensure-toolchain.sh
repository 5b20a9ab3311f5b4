#!/bin/sh
# Makes sure the tools a platform's build needs are present before Maven (or native-check.cmake)
# configures it.
#   native/cross/ensure-toolchain.sh <platform>
# Every Linux platform needs patchelf (Debian/Ubuntu package patchelf), which gives the bundled
# libraries their unique sonames (native/cmake/isolate_sonames.cmake). linux-aarch64 also needs
# Debian/Ubuntu's aarch64-linux-gnu-g++ and qemu-aarch64 (with its sysroot /usr/aarch64-linux-gnu,
# which the g++ package brings). When something is missing and this runs as root on a system with
# apt-get, it installs the packages non-interactively; otherwise it fails, naming the packages (and,
# for the cross build, the Maven property that skips it). macOS and Windows need nothing from here.
set -eu

platform="${1:-}"
skip_hint="or skip the cross build with -Dseq4j.cross.skip=true"

case "$platform" in
  linux-x86_64|linux-aarch64)
    if [ "$platform" = linux-aarch64 ] && ! uname -m | grep -Eq '^(aarch64|arm64)$'; then
      triple=aarch64-linux-gnu
      compiler="$triple-g++"
      emulator=qemu-aarch64
      packages="g++-aarch64-linux-gnu qemu-user patchelf"
    else  # built natively
      compiler=""
      emulator=""
      packages="patchelf"
      skip_hint="it is not optional: the Linux build renames the bundled libraries with it"
    fi
    ;;
  macosx-arm64|windows-x86_64)
    # built natively on their own machines (CI); nothing to cross-compile, no patchelf
    echo "ensure-toolchain: $platform is built natively, no cross toolchain needed"
    exit 0
    ;;
  *)
    echo "usage: $0 linux-x86_64|linux-aarch64" >&2
    exit 2
    ;;
esac

missing() {
  command -v patchelf >/dev/null 2>&1 || return 0
  [ -n "$compiler" ] || return 1
  command -v "$compiler" >/dev/null 2>&1 || return 0
  command -v "$emulator" >/dev/null 2>&1 || command -v "$emulator-static" >/dev/null 2>&1 || return 0
  [ -e "/usr/$triple/lib/libc.so.6" ] || return 0
  return 1
}

found() {
  if [ -n "$compiler" ]; then
    echo "ensure-toolchain: $platform: $(command -v "$compiler"), $(command -v "$emulator" || command -v "$emulator-static"), $(command -v patchelf)"
  else
    echo "ensure-toolchain: $platform: $(command -v patchelf) ($(patchelf --version 2>/dev/null))"
  fi
}

if ! missing; then
  found
  exit 0
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-toolchain: installing $packages (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null || echo "ensure-toolchain: apt-get update failed, trying the cached lists" >&2
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $packages >/dev/null
  if ! missing; then
    found
    exit 0
  fi
  echo "ensure-toolchain: $packages installed, but a tool is still missing" >&2
  exit 1
fi

if [ -n "$compiler" ]; then
  echo "ensure-toolchain: the $platform cross build needs $compiler, $emulator and patchelf." >&2
else
  echo "ensure-toolchain: the $platform build needs patchelf (Debian/Ubuntu package patchelf)." >&2
fi
echo "  Install them (Debian/Ubuntu, as root): apt-get install $packages" >&2
echo "  $skip_hint" >&2
exit 1
