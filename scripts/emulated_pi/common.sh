# Shared paths for the emulated Raspberry Pi scripts (sourced, not run).
# Everything lives under <repo>/.cache/emulated-pi so `make clean` drops it
# and nothing else appears at the tree's top level.
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PI_DIR=${MDNET_PI_DIR:-$REPO_DIR/.cache/emulated-pi}
ROOTFS=$PI_DIR/rootfs
PI_PORT=${MDNET_PI_PORT:-2222}
PI_USER=pi
PIDFILE=$PI_DIR/sshd.pid

need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "emulated-pi: needs root (debootstrap, chroot and mount); run as root" >&2
        exit 1
    fi
}
