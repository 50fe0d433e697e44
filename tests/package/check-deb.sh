#!/bin/sh
# check-deb.sh -- the Debian package, as an administrator meets it on a
# Debian 12 machine (make check-deb; .ci/run, after make check).  As
# root, on this machine:
#
#  1. make deb: dpkg-buildpackage -b, then lintian (no error, no
#     warning without an override in debian/);
#  2. dpkg -i: the users, /var/db/portcullis, the generated pair, the
#     conffiles; hardening-check on the four installed programs;
#     systemd-analyze verify on the installed unit, and its exposure;
#  3. portcullisd -n on the installed configuration;
#  4. the daemon started as the unit starts it (its ExecStartPre= and
#     ExecStart= lines, under its sandbox reproduced by run-as-unit.sh,
#     since CI has no running systemd), on the installed configuration:
#     ports 587 and 465 of every address, delivery over LMTP to a next
#     hop on 127.0.0.1:24;
#  5. a user made with the installed authctl; a message sent by swaks
#     with AUTH PLAIN after STARTTLS on 587, and with implicit TLS on
#     465, received by the next hop; a wrong password refused; authctl
#     stats over the control socket in /run/portcullis; a reload (the
#     unit's ExecReload=); a stop (SIGTERM, exit 0);
#  6. dpkg --purge: no file, directory or user left behind.
#
# If the system users exist already (scripts/users.sh made them for
# make check) and no process runs as them, they are removed first, so
# that the package is tried on what a fresh machine has, and made again
# by scripts/users.sh at the end.  If something runs as them (another
# test run on a shared machine), they are left alone and the purge must
# leave them alone too.

set -eu
cd "$(dirname "$0")/../.."
top=$(pwd)
here=$top/tests/package

USERS="_portcullis _portcullis_auth _portcullis_keys"
UNIT=/lib/systemd/system/portcullisd.service
CONF=/etc/portcullis.conf
work=$(mktemp -d /tmp/portcullis-check-deb.XXXXXX)
daemon_pid=""
hop_pid=""
fresh_users=0
step=0

say() {
	step=$((step + 1))
	echo "check-deb: $step. $*"
}

fail() {
	echo "check-deb: FAIL: $*" >&2
	[ -f "$work/daemon.log" ] && { echo "--- daemon log:" >&2;
	    tail -30 "$work/daemon.log" >&2; }
	exit 1
}

cleanup() {
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null || true
	[ -n "$hop_pid" ] && kill "$hop_pid" 2>/dev/null || true
	if dpkg-query -W -f='${db:Status-Status}' portcullis 2>/dev/null |
	    grep -qv not-installed; then
		dpkg --purge portcullis >/dev/null 2>&1 || true
	fi
	[ $fresh_users -eq 1 ] && sh "$top/scripts/users.sh" >/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

[ "$(id -u)" -eq 0 ] || { echo "check-deb: needs root (dpkg -i)" >&2; exit 2; }
for tool in dpkg-buildpackage lintian hardening-check systemd-analyze \
    swaks unshare setpriv /usr/bin/python3 readelf; do
	command -v $tool >/dev/null 2>&1 || {
		echo "check-deb: $tool not found: make deps installs it" >&2
		exit 2
	}
done
if dpkg-query -W -f='${db:Status-Status}' portcullis 2>/dev/null |
    grep -q '^installed'; then
	echo "check-deb: portcullis is installed already; purge it first" >&2
	exit 2
fi

# What the file system holds outside the places that change anyway.
snapshot() {
	find /etc /usr /lib /var /run /opt -xdev \
	    \( -path /var/log -o -path /var/cache -o -path /var/tmp \
	    -o -path /var/lib/dpkg -o -path /var/lib/apt -o -path /var/backups \
	    -o -path /run/user -o -path '/run/run-as-unit.*' \) -prune -o -print \
	    2>/dev/null | sort
}

users_busy() {
	for u in $USERS; do
		getent passwd "$u" >/dev/null && pgrep -u "$u" >/dev/null && return 0
	done
	return 1
}

# --- 1. build ---------------------------------------------------------
say "make deb (dpkg-buildpackage -b -uc -us, lintian)"
sh "$top/scripts/deb.sh" build >"$work/deb.log" 2>&1 || {
	cat "$work/deb.log" >&2; fail "make deb"; }
grep -v "running with root privileges" "$work/deb.log" | sed 's/^/    /'
deb=$(ls "$top"/build/deb/portcullis_*.deb)

if getent passwd _portcullis >/dev/null || getent passwd _portcullis_auth >/dev/null ||
    getent passwd _portcullis_keys >/dev/null; then
	if users_busy; then
		echo "check-deb: the system users are in use: trying the package" \
		    "with users that exist already"
	else
		for u in $USERS; do
			userdel "$u" 2>/dev/null || true
			groupdel "$u" 2>/dev/null || true
		done
		fresh_users=1
	fi
else
	fresh_users=1
fi
users_before=$(getent passwd $USERS | cut -d: -f1,3 || true)
snapshot >"$work/before"

# --- 2. install ---------------------------------------------------------
say "dpkg -i $(basename "$deb")"
dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i"; }
for u in $USERS; do
	getent passwd "$u" >/dev/null || fail "user $u was not created"
	case $(getent passwd "$u" | cut -d: -f7) in
	*/nologin) ;;
	*) fail "user $u has a login shell" ;;
	esac
done
[ "$(stat -c '%U %a' /var/db/portcullis)" = "_portcullis_auth 700" ] ||
    fail "/var/db/portcullis: $(stat -c '%U %a' /var/db/portcullis)"
[ "$(stat -c '%U %a' /etc/portcullis/tls/key.pem)" = "root 600" ] ||
    fail "the generated key is not root's, mode 0600"
openssl x509 -noout -subject -in /etc/portcullis/tls/cert.pem >/dev/null ||
    fail "the generated certificate does not parse"
conffiles=$(dpkg-query -W -f='${Conffiles}\n' portcullis | awk 'NF { print $1 }')
for f in /etc/portcullis.conf /etc/fail2ban/filter.d/portcullis.conf \
    /etc/fail2ban/jail.d/portcullis.conf; do
	echo "$conffiles" | grep -qx "$f" || fail "$f is not a conffile"
done
for p in /usr/sbin/portcullisd /usr/sbin/authctl \
    /usr/libexec/portcullis/portcullis-worker \
    /usr/libexec/portcullis/portcullis-authd \
    /usr/libexec/portcullis/portcullis-metrics \
    /usr/libexec/portcullis/portcullis-keys; do
	[ -x "$p" ] || fail "$p missing"
	! readelf -S "$p" | grep -q '\.symtab' || fail "$p is not stripped"
done
for m in portcullisd.8 authctl.8; do
	[ -f /usr/share/man/man8/$m.gz ] || fail "man page $m missing"
done
[ -f /usr/share/man/man5/portcullis.conf.5.gz ] || fail "portcullis.conf.5 missing"

say "hardening-check on the installed programs"
# --nocfprotection: see scripts/check-hardening.sh (Debian 12's crt
# objects are not marked, so no program linked on it is).
hardening-check --nocfprotection /usr/sbin/portcullisd /usr/sbin/authctl \
    /usr/libexec/portcullis/portcullis-worker \
    /usr/libexec/portcullis/portcullis-authd \
    /usr/libexec/portcullis/portcullis-metrics \
    /usr/libexec/portcullis/portcullis-keys | sed 's/^/    /'
hardening-check --quiet --nocfprotection /usr/sbin/portcullisd \
    /usr/sbin/authctl /usr/libexec/portcullis/portcullis-worker \
    /usr/libexec/portcullis/portcullis-authd \
    /usr/libexec/portcullis/portcullis-metrics \
    /usr/libexec/portcullis/portcullis-keys || fail "hardening-check"

say "systemd-analyze verify $UNIT"
systemd-analyze verify "$UNIT" || fail "systemd-analyze verify"
systemd-analyze security --offline=yes "$UNIT" 2>/dev/null | tail -n 1 |
    sed 's/^/    /'

# --- 3. the configuration -------------------------------------------
say "portcullisd -n on the installed $CONF"
/usr/sbin/portcullisd -n -f "$CONF" >"$work/n.out" 2>&1 || {
	cat "$work/n.out" >&2; fail "portcullisd -n"; }
grep -q "configuration OK" "$work/n.out" || fail "no 'configuration OK'"

# --- 4. start it as the unit does ----------------------------------
say "next hop: LMTP on 127.0.0.1:24 (aiosmtpd)"
mkdir "$work/hop"
# Debian's python3, which has python3-aiosmtpd (not a pyenv's).
env -u PYTHONPATH -u PYTHONHOME /usr/bin/python3 \
    "$top/tests/integration/smtp_helpers.py" nexthop --lmtp \
    --port 24 --dir "$work/hop" >"$work/hop.out" 2>&1 &
hop_pid=$!
i=0
until grep -q READY "$work/hop.out" 2>/dev/null; do
	i=$((i + 1)); [ $i -lt 100 ] || fail "the next hop did not start"
	sleep 0.1
done

say "start: the unit's ExecStartPre= and ExecStart=, under its sandbox"
# ExecStartPre=+... runs outside the sandbox, the others inside it.
sed -n 's/^ExecStartPre=+//p' "$UNIT" | while read -r cmd; do
	sh -c "$cmd" || fail "ExecStartPre=+$cmd"
done
sed -n 's/^ExecStartPre=\([^+]\)/\1/p' "$UNIT" | while read -r cmd; do
	sh "$here/run-as-unit.sh" "$UNIT" sh -c "exec $cmd" ||
	    fail "ExecStartPre=$cmd (in the sandbox)"
done
start=$(sed -n 's/^ExecStart=//p' "$UNIT")
# shellcheck disable=SC2086
sh "$here/run-as-unit.sh" "$UNIT" $start >"$work/daemon.log" 2>&1 &
daemon_pid=$!
wait_log() {
	i=0
	until [ "$(grep -c "$1" "$work/daemon.log")" -ge "${2:-1}" ]; do
		kill -0 "$daemon_pid" 2>/dev/null || fail "the daemon exited"
		i=$((i + 1)); [ $i -lt 300 ] || fail "no '$1' in the log"
		sleep 0.1
	done
}
wait_log "authd ping ok"
wait_log "listening on .* port 465"
grep "listening on" "$work/daemon.log" | sed 's/^/    /'
[ -S /run/portcullis/control.sock ] || fail "no control socket in /run/portcullis"

# --- 5. a user, a message, a refusal, stats, reload, stop -----------
say "authctl user add (the installed authctl, the installed configuration)"
printf 'correct horse battery\n' | /usr/sbin/authctl -f "$CONF" user add \
    --password-stdin alice@example.org || fail "authctl user add"
/usr/sbin/authctl -f "$CONF" user list | grep -q alice@example.org ||
    fail "authctl user list"

say "swaks: AUTH PLAIN after STARTTLS on 587, and on 465 (implicit TLS)"
swaks --silent 2 --server 127.0.0.1 --port 587 --tls \
    --auth PLAIN --auth-user alice@example.org \
    --auth-password 'correct horse battery' \
    --from alice@example.org --to bob@example.org \
    --header "Subject: check-deb 587" >"$work/swaks587" 2>&1 ||
    { cat "$work/swaks587" >&2; fail "swaks on 587"; }
swaks --silent 2 --server 127.0.0.1 --port 465 --tlsc \
    --auth PLAIN --auth-user alice@example.org \
    --auth-password 'correct horse battery' \
    --from alice@example.org --to bob@example.org \
    --header "Subject: check-deb 465" >"$work/swaks465" 2>&1 ||
    { cat "$work/swaks465" >&2; fail "swaks on 465"; }
n=$(ls "$work/hop" | grep -c '\.json$' || true)
[ "$n" -eq 2 ] || fail "the next hop got $n messages, not 2"
grep -l "check-deb 587" "$work/hop"/*.json >/dev/null || fail "587's message lost"
grep -l "check-deb 465" "$work/hop"/*.json >/dev/null || fail "465's message lost"

say "a wrong password is refused (535) and audited with the client"
if swaks --silent 2 --server 127.0.0.1 --port 587 --tls \
    --auth PLAIN --auth-user alice@example.org --auth-password wrong \
    --from alice@example.org --to bob@example.org >"$work/swaks-bad" 2>&1; then
	fail "a wrong password was accepted"
fi
grep -q "535 5.7.8" "$work/swaks-bad" || fail "no 535 5.7.8"
wait_log 'auth result=fail user="alice@example.org".* client=127.0.0.1 '

say "authctl stats over /run/portcullis/control.sock"
/usr/sbin/authctl -f "$CONF" stats >"$work/stats" 2>&1 ||
    { cat "$work/stats" >&2; fail "authctl stats"; }

say "reload (the unit's ExecReload=: -n, then SIGHUP)"
sed -n 's/^ExecReload=//p' "$UNIT" | sed "s/\$MAINPID/$daemon_pid/" |
    while read -r cmd; do
	case $cmd in
	/bin/kill*)
		# MAINPID is master: unshare and setpriv exec into it.
		sh -c "$cmd" || fail "ExecReload=$cmd" ;;
	*)
		sh "$here/run-as-unit.sh" "$UNIT" sh -c "exec $cmd" ||
		    fail "ExecReload=$cmd" ;;
	esac
done
wait_log "configuration reloaded"

say "stop (SIGTERM, as KillSignal=)"
kill -TERM "$daemon_pid"
rc=0
wait "$daemon_pid" || rc=$?
daemon_pid=""
[ $rc -eq 0 ] || fail "the daemon exited $rc on SIGTERM"
[ ! -e /run/portcullis/control.sock ] || fail "the control socket was left"
# systemd removes the RuntimeDirectory= when the unit stops.
rm -rf /run/portcullis
kill "$hop_pid" 2>/dev/null || true
wait "$hop_pid" 2>/dev/null || true
hop_pid=""

# --- 6. purge -------------------------------------------------------
say "dpkg --purge portcullis: nothing left behind"
dpkg --purge portcullis >"$work/purge.log" 2>&1 ||
    { cat "$work/purge.log" >&2; fail "dpkg --purge"; }
snapshot >"$work/after"
left=$(comm -13 "$work/before" "$work/after")
[ -z "$left" ] || fail "left behind after purge:
$left"
users_after=$(getent passwd $USERS | cut -d: -f1,3 || true)
[ "$users_after" = "$users_before" ] ||
    fail "users before: '$users_before', after purge: '$users_after'"
for u in $USERS; do
	if [ $fresh_users -eq 1 ] && getent group "$u" >/dev/null; then
		fail "group $u left behind"
	fi
done
echo "check-deb: OK"
