#!/usr/bin/env bash
# Build the base images of the Dockerfile locally, for machines without a container registry.
#
#   hypercache/runtime-base:bookworm   Debian bookworm, debootstrap --variant=minbase
#   hypercache/rust-base:<rustc ver>   the same plus build-essential, pkg-config and ca-certificates,
#                                      with THIS host's Rust toolchain copied to /usr/local/rust
#
# Usage: scripts/docker-base.sh [--force]      (as root; needs docker and network to a Debian mirror)
#
# Idempotent: an image that already exists is not rebuilt (--force rebuilds both). The debootstrap
# root file systems and the downloaded .debs are cached in $HYPERCACHE_CACHE_DIR
# (default /var/cache/hypercache), so a rebuild does not download or unpack Debian again.
# Prints the two image names on its last line as RUST_IMAGE=... RUNTIME_IMAGE=...
#
# Environment: DEBIAN_SUITE (bookworm), DEBIAN_MIRROR (from /etc/apt/sources*, else deb.debian.org),
# HYPERCACHE_CACHE_DIR, RUSTC (rustc to take the toolchain from; default: the one on PATH, resolved
# in the repository root so a rust-toolchain file there is honoured).
set -euo pipefail
cd "$(dirname "$0")/.."

FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1

SUITE=${DEBIAN_SUITE:-bookworm}
CACHE_DIR=${HYPERCACHE_CACHE_DIR:-/var/cache/hypercache}
RUNTIME_IMAGE=hypercache/runtime-base:$SUITE
RUSTC=${RUSTC:-rustc}
RUST_VERSION=$("$RUSTC" --version | awk '{print $2}')
RUST_SYSROOT=$("$RUSTC" --print sysroot)
RUST_IMAGE=hypercache/rust-base:$RUST_VERSION

log() { echo "docker-base: $*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run as root (debootstrap needs it)"
command -v docker >/dev/null || die "docker not found"
docker info >/dev/null 2>&1 || die "the docker daemon is not reachable"

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

if [[ $FORCE -eq 0 ]] && image_exists "$RUNTIME_IMAGE" && image_exists "$RUST_IMAGE"; then
	log "images exist: $RUNTIME_IMAGE $RUST_IMAGE"
	echo "RUST_IMAGE=$RUST_IMAGE RUNTIME_IMAGE=$RUNTIME_IMAGE"
	exit 0
fi

if [[ -z "${DEBIAN_MIRROR:-}" ]]; then
	DEBIAN_MIRROR=$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
		awk '{print $2}' | head -n1 || true)
	DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
fi

if ! command -v debootstrap >/dev/null; then
	log "installing debootstrap"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

mkdir -p "$CACHE_DIR/debs"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hypercache-base.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# rootfs_tarball NAME EXTRA_PACKAGES -> path of a cached tarball of a cleaned minbase root file system
rootfs_tarball() {
	local name=$1 include=$2 tarball="$CACHE_DIR/rootfs-$SUITE-$1.tar"
	if [[ ! -s "$tarball" ]]; then
		local root="$WORK/rootfs-$name"
		log "debootstrap $SUITE ($name) from $DEBIAN_MIRROR"
		debootstrap --variant=minbase ${include:+--include="$include"} --cache-dir="$CACHE_DIR/debs" \
			"$SUITE" "$root" "$DEBIAN_MIRROR" >"$WORK/debootstrap-$name.log" 2>&1 ||
			{ tail -n 20 "$WORK/debootstrap-$name.log" >&2; die "debootstrap failed"; }
		# As in Debian's own images: no package lists, caches or logs; no daemons started by apt.
		rm -rf "${root:?}"/var/lib/apt/lists/* "${root:?}"/var/cache/apt/*.bin "${root:?}"/var/cache/apt/archives/*.deb \
			"${root:?}"/var/log/* "${root:?}"/tmp/* "${root:?}"/dev/* "${root:?}"/proc/* "${root:?}"/sys/*
		printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d" && chmod 755 "$root/usr/sbin/policy-rc.d"
		tar --numeric-owner -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
		rm -rf "$root"
	fi
	echo "$tarball"
}

# The same defaults as Debian's docker images.
IMPORT_ARGS=(--change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]')
PATH_DEFAULT=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

if [[ $FORCE -eq 1 ]] || ! image_exists "$RUNTIME_IMAGE"; then
	tarball=$(rootfs_tarball minbase "")
	log "docker import $RUNTIME_IMAGE"
	docker import "${IMPORT_ARGS[@]}" --change "ENV PATH=$PATH_DEFAULT" \
		-m "debootstrap --variant=minbase $SUITE" "$tarball" "$RUNTIME_IMAGE" >/dev/null
fi

if [[ $FORCE -eq 1 ]] || ! image_exists "$RUST_IMAGE"; then
	tarball=$(rootfs_tarball build "build-essential,pkg-config,ca-certificates,git")
	root="$WORK/rust-base"
	mkdir -p "$root"
	tar --numeric-owner -C "$root" -xf "$tarball"
	# rustup cannot download a toolchain here, so copy the host's (without its docs in share/).
	log "copying the Rust $RUST_VERSION toolchain from $RUST_SYSROOT"
	mkdir -p "$root/usr/local/rust" "$root/usr/local/cargo/bin"
	for d in bin lib libexec etc; do
		[[ -d "$RUST_SYSROOT/$d" ]] && cp -a "$RUST_SYSROOT/$d" "$root/usr/local/rust/"
	done
	rm -f "$root/usr/local/rust/bin/"{rust-gdb,rust-gdbgui,rust-lldb}
	log "docker import $RUST_IMAGE"
	tar --numeric-owner -C "$root" -c . | docker import "${IMPORT_ARGS[@]}" \
		--change "ENV PATH=/usr/local/cargo/bin:/usr/local/rust/bin:$PATH_DEFAULT" \
		--change 'ENV CARGO_HOME=/usr/local/cargo' --change 'ENV RUSTUP_HOME=/usr/local/rustup' \
		--change "ENV RUST_VERSION=$RUST_VERSION" \
		-m "debootstrap $SUITE + host Rust $RUST_VERSION" - "$RUST_IMAGE" >/dev/null
fi

log "built: $RUNTIME_IMAGE $RUST_IMAGE"
echo "RUST_IMAGE=$RUST_IMAGE RUNTIME_IMAGE=$RUNTIME_IMAGE"
