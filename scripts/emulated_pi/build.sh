#!/usr/bin/env bash
# Build, once, an arm64 Debian Bookworm root file system (the base of
# Raspberry Pi OS, Python 3.11) that runs under qemu-user emulation, with an
# sshd for the remote-bench tests. Re-running is cheap: every step is skipped
# when its result is already in the cache.
set -euo pipefail
source "$(dirname "$0")/common.sh"
need_root
mkdir -p "$PI_DIR"

# Host tools: only installed when missing, so warm runs need no network.
missing=()
command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v update-binfmts >/dev/null || missing+=(binfmt-support)
command -v ssh-keygen >/dev/null || missing+=(openssh-client)
if [ ${#missing[@]} -gt 0 ]; then
    echo "emulated-pi: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The kernel must hand aarch64 binaries to qemu (no-op when already set up).
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64

if [ ! -e "$PI_DIR/.rootfs-done" ]; then
    # Build beside the final place and rename at the end: an interrupted
    # debootstrap never leaves a half root fs that looks finished.
    partial=$PI_DIR/rootfs.partial
    for m in proc sys; do mountpoint -q "$partial/$m" 2>/dev/null && umount "$partial/$m" || true; done
    rm -rf --one-file-system "$partial" "$ROOTFS"
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    echo "emulated-pi: debootstrap arm64 bookworm from $mirror (about 3 minutes)" >&2
    debootstrap --arch=arm64 --variant=minbase \
        --include=python3,python3-venv,openssh-server,ca-certificates \
        bookworm "$partial" "$mirror" >"$PI_DIR/debootstrap.log" 2>&1 \
        || { echo "emulated-pi: debootstrap failed; see $PI_DIR/debootstrap.log" >&2; exit 1; }
    mv "$partial" "$ROOTFS"
    touch "$PI_DIR/.rootfs-done"
fi

# Network and pip settings from the host, so pip inside can reach PyPI.
cp -L /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    cp -L /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
fi
# Only the CA bundle and a time-out: the host's find-links/extra indexes are
# local folders that do not exist inside the chroot.
printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\ntimeout = 120\ndisable-pip-version-check = true\n' \
    >"$ROOTFS/etc/pip.conf"

# The login user, like Raspberry Pi OS's default one.
if ! chroot "$ROOTFS" id -u "$PI_USER" >/dev/null 2>&1; then
    chroot "$ROOTFS" useradd -m -s /bin/bash "$PI_USER"
fi
# No password, but not locked either: with UsePAM no, sshd refuses even key
# logins to a locked ('!') account.
chroot "$ROOTFS" usermod -p '*' "$PI_USER"

# A throwaway user key pair and host key, both generated on the host (fast)
# and kept in the cache; a known_hosts file for the tests.
[ -f "$PI_DIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C emulated-pi-test -f "$PI_DIR/id_ed25519"
[ -f "$PI_DIR/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C emulated-pi-host -f "$PI_DIR/ssh_host_ed25519_key"
install -m 600 "$PI_DIR/ssh_host_ed25519_key" "$ROOTFS/etc/ssh/ssh_host_ed25519_key"
install -m 644 "$PI_DIR/ssh_host_ed25519_key.pub" "$ROOTFS/etc/ssh/ssh_host_ed25519_key.pub"
uid=$(chroot "$ROOTFS" id -u "$PI_USER"); gid=$(chroot "$ROOTFS" id -g "$PI_USER")
install -d -m 700 -o "$uid" -g "$gid" "$ROOTFS/home/$PI_USER/.ssh"
install -m 600 -o "$uid" -g "$gid" "$PI_DIR/id_ed25519.pub" "$ROOTFS/home/$PI_USER/.ssh/authorized_keys"

# sshd: key login only, no PAM (PAM's session modules fail inside a chroot),
# only the host key we made.
cat >"$ROOTFS/etc/ssh/sshd_config.d/emulated-pi.conf" <<CONF
HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin no
CONF
mkdir -p "$ROOTFS/run/sshd" "$ROOTFS/mnt/full-disk"
echo "emulated-pi: ready in $ROOTFS" >&2
