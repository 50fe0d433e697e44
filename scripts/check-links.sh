#!/bin/sh
# check-links.sh -- `make check-links`: every library a built program
# maps (its NEEDED entries, readelf -d) must be on that program's
# allow-list below.  The worker faces the network, so it must not map
# the user store's libraries (LMDB, libcrypt, argon2) nor authd's
# (libcurl, jansson); the GNUmakefile's per-program link lines hold the
# same lists.  Built with clang (no --as-needed) this checks the link
# lines; built with gcc on Debian (--as-needed) it checks what the code
# actually calls.
#
# usage: check-links.sh BUILD-DIR [sanitize]

set -eu

build=${1:?usage: check-links.sh BUILD-DIR [sanitize]}
sanitize=${2:-}

# Always allowed: the C runtime.
base="libc libm libpthread ld-linux-x86-64 ld-linux-aarch64 ld-linux
libgcc_s"
# Under SANITIZE=1: the sanitizer runtimes (gcc links them shared).
san="libasan liblsan libubsan libclang_rt"
# libargon2.pc adds -lrt -ldl (stubs since glibc 2.34).
argon2="libargon2 librt libdl"

allowed() {
	case "$1" in
	portcullisd)
		echo libbsd libseccomp libevent libssl libcrypto ;;
	portcullis-worker)
		echo libbsd libseccomp libevent libevent_openssl libssl \
		    libcrypto ;;
	portcullis-authd)
		echo libbsd libseccomp libevent libcrypto liblmdb libcrypt \
		    $argon2 libcurl libjansson libhiredis libldap liblber libpq ;;
	portcullis-metrics)
		echo libbsd libseccomp libevent ;;
	authctl)
		echo libbsd libssl libcrypto liblmdb libcrypt $argon2 ;;
	portcullis-keys)
		echo libbsd libseccomp libevent libcrypto ;;
	esac
}

# "libevent_openssl-2.1.so.7" -> "libevent_openssl"
stem() {
	echo "$1" | sed -e 's/\.so.*$//' -e 's/-[0-9][0-9]*\.[0-9.]*$//'
}

command -v readelf >/dev/null 2>&1 || {
	echo "check-links: readelf not found (binutils)" >&2
	exit 2
}

fail=0
for prog in portcullisd portcullis-worker portcullis-authd portcullis-metrics \
    authctl portcullis-keys; do
	bin="$build/$prog"
	if [ ! -f "$bin" ]; then
		echo "check-links: $bin: not built" >&2
		fail=1
		continue
	fi
	ok="$base $(allowed "$prog")"
	[ -n "$sanitize" ] && ok="$ok $san"
	needed=$(readelf -d "$bin" |
	    sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p')
	bad=""
	for lib in $needed; do
		s=$(stem "$lib")
		case " $(echo $ok) " in
		*" $s "*) ;;
		*) bad="$bad $lib" ;;
		esac
	done
	if [ -n "$bad" ]; then
		echo "check-links: $prog maps what it must not:$bad" >&2
		fail=1
	else
		echo "  LINKS   $prog:" $(for l in $needed; do stem "$l"; done)
	fi
done
exit $fail
