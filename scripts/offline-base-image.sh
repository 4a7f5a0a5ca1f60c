#!/bin/sh
# Builds a local stand-in for the official `node:20-bookworm-slim` image on a machine that reaches no image
# registry, only a Debian mirror (docs/operations.md, "Trying the images without a registry"). Not used by CI.
#
#   sudo scripts/offline-base-image.sh            # tags node:20-bookworm-slim
#   sudo TAG=my-node:20 scripts/offline-base-image.sh
#
# What it makes, as the official image has it: a Debian bookworm root file system (debootstrap, minbase
# variant), this host's Node 20 as /usr/local/bin/node, npm in /usr/local/lib/node_modules/npm with the
# /usr/local/bin/npm and npx links (corepack likewise when the host has it), a `node` user and group with
# uid/gid 1000 and home /home/node (shell /bin/bash), PATH, NODE_VERSION and CMD ["node"]. What it leaves out:
# the official image's docker-entrypoint.sh (which only prefixes `node` to a command that is not a program; every
# command in this repository names its program) and Yarn.
#
# Needs: root (debootstrap, chroot), docker, debootstrap (installed with apt-get when missing), a bookworm host
# (the host's node binary links the host's libstdc++ and glibc; bookworm's are the image's) whose `node` is 20.x.
# Environment: TAG (node:20-bookworm-slim), DEBIAN_MIRROR (http://deb.debian.org/debian), NODE_BIN
# (/usr/bin/node), NPM_DIR (/usr/lib/node_modules/npm), COREPACK_DIR (/usr/lib/node_modules/corepack).
set -eu

TAG=${TAG:-node:20-bookworm-slim}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
NODE_BIN=${NODE_BIN:-/usr/bin/node}
NPM_DIR=${NPM_DIR:-/usr/lib/node_modules/npm}
COREPACK_DIR=${COREPACK_DIR:-/usr/lib/node_modules/corepack}

fail() {
  echo "offline-base-image: $*" >&2
  exit 1
}

[ -x "$NODE_BIN" ] || fail "no node at $NODE_BIN (set NODE_BIN)"
[ -f "$NPM_DIR/bin/npm-cli.js" ] || fail "no npm in $NPM_DIR (set NPM_DIR)"
NODE_VERSION=$("$NODE_BIN" -p 'process.versions.node')
case "$NODE_VERSION" in
  20.*) ;;
  *) fail "$NODE_BIN is Node $NODE_VERSION; node:20-bookworm-slim needs Node 20" ;;
esac
[ "$(id -u)" = 0 ] || fail "run as root (debootstrap and chroot need it)"
command -v docker >/dev/null || fail "docker is not installed"
. /etc/os-release
[ "${VERSION_CODENAME:-}" = bookworm ] || echo "offline-base-image: warning: the host is ${VERSION_CODENAME:-unknown}, not bookworm: its node may need libraries the image lacks" >&2
if ! command -v debootstrap >/dev/null; then
  apt-get install -y debootstrap
fi

ROOTFS=$(mktemp -d /tmp/node-bookworm-rootfs.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT INT TERM
# mktemp makes it 0700, and the tar below carries that mode to the image's `/`: every user but root would be
# refused everything (`exec: "node": executable file not found`, `su: failed to execute /bin/sh`).
chmod 0755 "$ROOTFS"

debootstrap --variant=minbase bookworm "$ROOTFS" "$DEBIAN_MIRROR"

# Node, npm and corepack where the official image has them.
install -D -m 0755 "$NODE_BIN" "$ROOTFS/usr/local/bin/node"
mkdir -p "$ROOTFS/usr/local/lib/node_modules"
cp -a "$NPM_DIR" "$ROOTFS/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ROOTFS/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ROOTFS/usr/local/bin/npx"
if [ -f "$COREPACK_DIR/dist/corepack.js" ]; then
  cp -a "$COREPACK_DIR" "$ROOTFS/usr/local/lib/node_modules/corepack"
  ln -s ../lib/node_modules/corepack/dist/corepack.js "$ROOTFS/usr/local/bin/corepack"
fi

# The official image's user: `groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash
# --create-home node`.
chroot "$ROOTFS" groupadd --gid 1000 node
chroot "$ROOTFS" useradd --uid 1000 --gid node --shell /bin/bash --create-home node

# Check inside the root file system that node, npm and the user work, before importing.
chroot "$ROOTFS" /usr/local/bin/node -e 'process.exit(process.versions.node === process.argv[1] ? 0 : 1)' "$NODE_VERSION"
chroot "$ROOTFS" env PATH=/usr/local/bin:/usr/bin:/bin npm --version >/dev/null
[ "$(chroot "$ROOTFS" id -u node):$(chroot "$ROOTFS" id -g node)" = 1000:1000 ] || fail "node user is not 1000:1000"

# As slim as the official image: no package lists, caches or logs.
chroot "$ROOTFS" apt-get clean
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/log/*.log "$ROOTFS"/tmp/*

tar -C "$ROOTFS" --numeric-owner -cf - . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$NODE_VERSION" \
  --change 'CMD ["node"]' \
  --message "offline stand-in for node:20-bookworm-slim (scripts/offline-base-image.sh)" \
  - "$TAG"

# As the services run it: a numeric non-root user (the Dockerfile's USER 1000:1000).
docker run --rm --user 1000:1000 "$TAG" node -e 'console.log(`${process.argv[1]}: node ${process.version}, uid of node: ` + require("child_process").execFileSync("id", ["-u", "node"]).toString().trim())' "$TAG"
