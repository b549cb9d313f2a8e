#!/usr/bin/env bash
# Start the emulated Pi's sshd on 127.0.0.1:$PI_PORT (loopback only) and
# record its PID for stop.sh. Prints the target for the tests.
set -euo pipefail
source "$(dirname "$0")/common.sh"
need_root
[ -e "$PI_DIR/.rootfs-done" ] || { echo "emulated-pi: not built; run scripts/emulated_pi/build.sh" >&2; exit 1; }
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "emulated-pi: already running (pid $(cat "$PIDFILE"))" >&2
    echo "MDNET_DEPLOY_TEST_PI=$PI_USER@127.0.0.1:$PI_PORT"
    exit 0
fi
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64

# Only what sshd and Python need: /proc and a private devpts (no bind of
# the host's /dev, so removing the cache can never touch the host's nodes).
mountpoint -q "$ROOTFS/proc" || mount -t proc proc "$ROOTFS/proc"
mountpoint -q "$ROOTFS/dev/pts" || mount -t devpts -o newinstance,ptmxmode=0666 devpts "$ROOTFS/dev/pts"
# A tiny disk for the "full disk" test.
mkdir -p "$ROOTFS/mnt/full-disk"
mountpoint -q "$ROOTFS/mnt/full-disk" || mount -t tmpfs -o size=512k,mode=1777 tmpfs "$ROOTFS/mnt/full-disk"
mkdir -p "$ROOTFS/run/sshd"
# The tests trust exactly this host key on this port.
echo "[127.0.0.1]:$PI_PORT $(cut -d' ' -f1,2 "$PI_DIR/ssh_host_ed25519_key.pub")" >"$PI_DIR/known_hosts"

# Loopback only: nothing outside this machine can reach the emulated Pi.
chroot "$ROOTFS" /usr/sbin/sshd -D -e -p "$PI_PORT" -o ListenAddress=127.0.0.1 \
    >>"$PI_DIR/sshd.log" 2>&1 </dev/null &
echo $! >"$PIDFILE"
for _ in $(seq 1 120); do
    if python3 -c "import socket,sys; s=socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1); s.recv(4) or sys.exit(1)" "$PI_PORT" 2>/dev/null; then
        echo "emulated-pi: sshd up on 127.0.0.1:$PI_PORT (pid $(cat "$PIDFILE"))" >&2
        echo "MDNET_DEPLOY_TEST_PI=$PI_USER@127.0.0.1:$PI_PORT"
        exit 0
    fi
    kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break
    sleep 0.5
done
echo "emulated-pi: sshd did not start; see $PI_DIR/sshd.log" >&2
"$(dirname "$0")/stop.sh"
exit 1
