#!/usr/bin/env bash
# Stop what start.sh started (by its recorded PID) and unmount what it mounted.
set -uo pipefail
source "$(dirname "$0")/common.sh"
need_root
if [ -f "$PIDFILE" ]; then
    pid=$(cat "$PIDFILE")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$PIDFILE"
fi
# Session processes sshd forked may outlive it (a test killed mid-run).
# They are ours: found by their root directory, ended by PID.
for p in /proc/[0-9]*; do
    if [ "$(readlink "$p/root" 2>/dev/null)" = "$ROOTFS" ]; then
        kill -9 "${p#/proc/}" 2>/dev/null || true
    fi
done
sleep 0.2
for m in mnt/full-disk dev/pts proc; do
    if mountpoint -q "$ROOTFS/$m" 2>/dev/null; then
        umount "$ROOTFS/$m" || umount -l "$ROOTFS/$m"
    fi
done
echo "emulated-pi: stopped" >&2
