#!/bin/sh
# deps.sh -- make sure the packages portcullis builds and tests with are
# present.  On Debian as root they are installed with apt-get; anywhere
# else the exact install line is printed and the script fails, so that
# nothing is installed behind the administrator's back.
#
# usage: deps.sh [extra-debian-package ...]

set -eu

DEBIAN_PKGS="gcc make pkg-config byacc libssl-dev libbsd-dev liblmdb-dev
libevent-dev libcurl4-openssl-dev libjansson-dev libargon2-dev
libseccomp-dev libcrypt-dev libcriterion-dev openssl python3 procps
mandoc netcat-openbsd curl swaks libnet-ssleay-perl python3-aiosmtpd python3-lmdb $*"
OPENBSD_PKGS="gmake pkgconf lmdb libevent curl jansson argon2 criterion
python3 curl"

debian_pkgs=$(echo $DEBIAN_PKGS)

if [ ! -f /etc/debian_version ]; then
	case "$(uname -s)" in
	OpenBSD)
		echo "deps: install with: pkg_add $(echo $OPENBSD_PKGS)" >&2 ;;
	*)
		echo "deps: not Debian; the Debian packages are:" >&2
		echo "    apt-get install $debian_pkgs" >&2 ;;
	esac
	exit 1
fi

# The OAuth tests run a real authorization server on Node.js (20 or
# later, as this kind of machine has); Debian's nodejs is the fallback.
command -v node >/dev/null 2>&1 || debian_pkgs="$debian_pkgs nodejs npm"

missing=""
for p in $debian_pkgs; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = installed ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages; as root run:" >&2
	echo "    apt-get install$missing" >&2
	exit 1
fi

echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends $missing; then
	apt-get update -q
	apt-get install -y -q --no-install-recommends $missing
fi
