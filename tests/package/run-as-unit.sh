#!/bin/sh
# run-as-unit.sh -- run a command under the file-system and privilege
# restrictions of a systemd unit, for machines where systemd does not
# run (CI): a private mount namespace (unshare) rebuilt as the unit's
# settings ask, then setpriv for the capabilities.
#
# usage: run-as-unit.sh UNIT-FILE COMMAND [ARG ...]      (as root)
#
# Reproduced from UNIT-FILE: ProtectSystem=strict (every mount read-only
# but /dev, /proc, /sys and the writable paths), ReadWritePaths= (a
# leading "-": skipped when missing), RuntimeDirectory= (made under /run
# first, as systemd does, mode RuntimeDirectoryMode=), PrivateTmp=
# (fresh /tmp and /var/tmp), ProtectHome=yes (/home, /root, /run/user
# empty and read-only), PrivateDevices= (a /dev of null, zero, full,
# random, urandom and tty), ProtectProc=/ProcSubset= (a /proc of our
# own), NoNewPrivileges= and CapabilityBoundingSet=.  Not reproduced:
# the seccomp filters (SystemCallFilter=, RestrictAddressFamilies=,
# MemoryDenyWriteExecute=, ...) and the other kernel-side settings,
# which need systemd itself.

set -eu

unit=$1
shift

# The last value of a setting (systemd's rule for most of these).
setting() {
	sed -n "s/^$1=//p" "$unit" | tail -n 1
}

rw=$(sed -n 's/^ReadWritePaths=//p' "$unit" | tr '\n' ' ')
rundirs=$(setting RuntimeDirectory)
runmode=$(setting RuntimeDirectoryMode)
caps=$(setting CapabilityBoundingSet)
protect_system=$(setting ProtectSystem)
[ "$protect_system" = strict ] || {
	echo "run-as-unit: only ProtectSystem=strict is reproduced" >&2
	exit 2
}

paths=""
for p in $rw; do
	case $p in
	-*)	p=${p#-}; [ -e "$p" ] || continue ;;
	*)	[ -e "$p" ] || {
			echo "run-as-unit: ReadWritePaths=$p does not exist" \
			    "(systemd would refuse to start)" >&2
			exit 1
		} ;;
	esac
	paths="$paths $p"
done
for d in $rundirs; do
	mkdir -p -m "${runmode:-0755}" "/run/$d"
	paths="$paths /run/$d"
done

# "CAP_NET_BIND_SERVICE CAP_SETUID" -> "-all,+net_bind_service,+setuid"
bounding=-all
for c in $caps; do
	c=$(echo "${c#CAP_}" | tr 'A-Z' 'a-z')
	bounding="$bounding,+$c"
done
nnp=""
[ "$(setting NoNewPrivileges)" = yes ] && nnp=--no-new-privs
private_tmp=$(setting PrivateTmp)
protect_home=$(setting ProtectHome)
private_devices=$(setting PrivateDevices)
proc_subset=$(setting ProcSubset)
protect_proc=$(setting ProtectProc)

export RW_PATHS="$paths" BOUNDING="$bounding" NNP="$nnp" \
    PRIVATE_TMP="$private_tmp" PROTECT_HOME="$protect_home" \
    PRIVATE_DEVICES="$private_devices" PROC_SUBSET="$proc_subset" \
    PROTECT_PROC="$protect_proc"

exec unshare --mount --propagation private sh -eu -c '
	# The writable paths become mounts of their own, kept writable.
	for p in $RW_PATHS; do
		mount --bind "$p" "$p"
	done
	# /dev before the rest goes read-only: the new one is built on a
	# tmpfs mounted where the old /dev can still be reached.
	if [ "$PRIVATE_DEVICES" = yes ]; then
		d=$(mktemp -d /run/run-as-unit.XXXXXX)
		mount -t tmpfs -o mode=0755,nosuid,noexec tmpfs "$d"
		for n in null zero full random urandom tty; do
			: > "$d/$n"
			mount --bind "/dev/$n" "$d/$n"
		done
		mkdir "$d/shm" "$d/pts"
		mount --move "$d" /dev
		rmdir "$d"
	fi
	# ProtectSystem=strict: every other mount read-only.
	awk "{ print \$2 }" /proc/self/mounts | sort -u | while read -r m; do
		case "$m" in
		/proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue ;;
		esac
		skip=0
		for p in $RW_PATHS; do
			[ "$m" = "$p" ] && skip=1
		done
		[ $skip -eq 1 ] && continue
		mount -o remount,bind,ro "$m" 2>/dev/null || true
	done
	if [ "$PRIVATE_TMP" = yes ]; then
		mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
		mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /var/tmp
	fi
	if [ "$PROTECT_HOME" = yes ]; then
		for h in /home /root /run/user; do
			[ -d "$h" ] && mount -t tmpfs -o ro,mode=0755 tmpfs "$h"
		done
	fi
	popts=""
	[ "$PROTECT_PROC" = invisible ] && popts="hidepid=invisible"
	[ "$PROC_SUBSET" = pid ] && popts="${popts:+$popts,}subset=pid"
	if [ -n "$popts" ]; then
		mount -t proc -o "nosuid,nodev,noexec,$popts" proc /proc
	fi
	exec setpriv $NNP --bounding-set "$BOUNDING" -- "$@"
' run-as-unit "$@"
