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
haproxy
mandoc netcat-openbsd curl swaks libnet-ssleay-perl python3-aiosmtpd python3-lmdb
libldap2-dev slapd ldap-utils
gsasl msmtp
gdb devscripts fail2ban debhelper dpkg-dev lintian fakeroot systemd
libhiredis-dev redis-server prometheus
libpq-dev postgresql dovecot-core testssl.sh $*"
OPENBSD_PKGS="gmake pkgconf lmdb libevent curl jansson argon2 criterion
openldap-client
python3 curl hiredis redis"

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

# haproxy: the balancer in front of test_proxy's listeners.
# libpq-dev: the sql checker.  postgresql: test_sql.py runs its own
# server (initdb, postgres) in a temporary directory; dovecot-core:
# doveadm pw writes that test's hashes as a web panel stores them.
# gdb: the sandbox tests attach to the children.  devscripts:
# hardening-check.  fail2ban: fail2ban-regex reads the shipped filter.
# debhelper, dpkg-dev, lintian, fakeroot: make deb.  systemd:
# systemd-analyze verifies the unit (no running systemd needed).
# libhiredis-dev: authd's "state redis"; redis-server: its tests.
# prometheus: test_metrics scrapes the endpoint with a real server and
# checks the scrape and the alerting rules with promtool.
# libldap2-dev: authd's ldap checker.  slapd, ldap-utils: its tests run
# real OpenLDAP servers (tests/integration/slapd.py).
# testssl.sh: test_testssl checks session resumption by tickets from
# outside, as an administrator would.

# The OAuth tests run a real authorization server and nodemailer on
# Node.js 20 or later (tests/integration/oauth/package.json).  Debian 12
# has Node 18: where there is no node, Debian's is installed, and then
# refused below with the way out.  A node without npm (NodeSource's
# nodejs brings its own npm; Debian's npm conflicts with it) is an
# error too: the OAuth tests would not run.
NODE_MIN=20
command -v node >/dev/null 2>&1 || debian_pkgs="$debian_pkgs nodejs npm"

node_check() {
	v=$(node -e 'process.stdout.write(process.versions.node)' 2>/dev/null) ||
	    v=unknown
	major=${v%%.*}
	case $major in
	''|*[!0-9]*) major=0 ;;
	esac
	if [ "$major" -lt $NODE_MIN ]; then
		echo "deps: node $v is older than $NODE_MIN, which the OAuth" \
		    "tests' npm packages need (Debian 12 has 18)." >&2
		echo "    Install Node.js $NODE_MIN or later (for instance" \
		    "NodeSource's nodejs package), then run make deps again." >&2
		exit 1
	fi
	if ! command -v npm >/dev/null 2>&1; then
		echo "deps: node $v has no npm; the OAuth tests need it to install" \
		    "their packages (tests/integration/oauth)." >&2
		echo "    Install the npm that goes with this node (NodeSource's" \
		    "nodejs includes it; Debian's node 18 has the npm package)." >&2
		exit 1
	fi
}

missing=""
for p in $debian_pkgs; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = installed ] || missing="$missing $p"
done
if [ -z "$missing" ]; then
	node_check
	exit 0
fi

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
node_check
