#!/bin/sh
# check-hardening.sh -- each program of a build carries every protection
# of the hardened build, as Debian's hardening-check(1) sees it: PIE,
# stack protector, _FORTIFY_SOURCE, RELRO and BIND_NOW.
#
# usage: check-hardening.sh BUILD [cf-protection OBJECT ...]
#
# Control-flow protection (IBT, SHSTK) is checked apart: the linker
# marks a program only if every object in it is marked, and Debian 12's
# crt1.o and crti.o are not, so no program linked there carries the
# mark (ssh and curl neither).  What we can hold ourselves to is that
# each of our objects was compiled with -fcf-protection, when the
# compiler has it ("cf-protection" as the second argument, then the
# objects the programs are linked from: a build directory may still
# hold objects of files that no longer exist).

set -eu

build=$1
cfp=${2:-}
[ $# -ge 2 ] && shift 2 || shift $#
progs="portcullisd portcullis-worker portcullis-authd portcullis-metrics authctl
    portcullis-keys"

command -v hardening-check >/dev/null 2>&1 || {
	echo "check-hardening: hardening-check not found (Debian devscripts)" >&2
	exit 2
}

fail=0
for p in $progs; do
	if ! hardening-check --quiet --nocfprotection "$build/$p"; then
		fail=1
	fi
done

if [ "$cfp" = cf-protection ]; then
	for o in "$@"; do
		if ! readelf -n "$o" | grep -q 'x86 feature: IBT, SHSTK'; then
			echo "check-hardening: $o: not built with -fcf-protection" >&2
			fail=1
		fi
	done
fi

if [ $fail -ne 0 ]; then
	echo "check-hardening: a protection is missing" >&2
	exit 1
fi
echo "  HARDEN  $progs: PIE, stack protector, fortify, RELRO, BIND_NOW${cfp:+, cf-protection}"
