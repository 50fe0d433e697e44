#!/bin/sh
# run.sh -- `make run`: prepare ./run/, start the development identity
# provider (IdP) on loopback, and start portcullisd in the foreground
# with the development configuration.  Ctrl-C stops both.
#
# The chain is cache -> lmdb -> oauth: the local user demo@example.org
# is in the store, the remote user alice@example.org is known only to
# the IdP, and the IdP's answers are cached.  The IdP is the test
# authorization server (tests/integration/oauth/server.js, npm packages
# from its package-lock.json); without Node.js or the npm registry the
# demo runs with the local store alone and says why in one line.
#
# Environment (the defaults are those README.md shows):
#	BUILD				the build directory, absolute or from
#					the top of the checkout (required)
#	PORTCULLIS_RUN_DIR		./run
#	PORTCULLIS_RUN_SMTP_PORT	2525 (plaintext, STARTTLS)
#	PORTCULLIS_RUN_SMTPS_PORT	4650 (implicit TLS)
#	PORTCULLIS_RUN_IDP_PORT		9443 (the IdP, HTTPS)
#	PORTCULLIS_RUN_IDP_ADMIN_PORT	9444 (its request counts, HTTP)
#	PORTCULLIS_RUN_NODE		node (the Node.js to run the IdP with)

set -eu

BUILD=${BUILD:?BUILD must name the build directory}
top=$(pwd)
rundir=${PORTCULLIS_RUN_DIR:-$top/run}
smtp_port=${PORTCULLIS_RUN_SMTP_PORT:-2525}
smtps_port=${PORTCULLIS_RUN_SMTPS_PORT:-4650}
idp_port=${PORTCULLIS_RUN_IDP_PORT:-9443}
idp_admin_port=${PORTCULLIS_RUN_IDP_ADMIN_PORT:-9444}
node=${PORTCULLIS_RUN_NODE:-node}
oauthdir="$top/tests/integration/oauth"
idpdir="$rundir/idp"
case $BUILD in
/*)	bin=$BUILD ;;
*)	bin=$top/$BUILD ;;
esac
authctl="$bin/authctl"

# The IdP's client of portcullis, and its users (server.js).
idp_client=portcullis
idp_secret=portcullis-secret

umask 022
mkdir -p "$rundir/db" "$rundir/spool" "$rundir/empty" "$idpdir"
chmod 0700 "$rundir/db"

if [ "$(id -u)" -eq 0 ]; then
	sh scripts/users.sh
	user=_portcullis
	authuser=_portcullis_auth
	chown "$authuser" "$rundir/db"
	who="as root: workers run as $user (chrooted to $rundir/empty), authd as $authuser"
else
	user=$(id -un)
	authuser=$user
	who="as $(id -un): no privilege drop and no chroot"
fi

if [ ! -s "$rundir/cert.pem" ] || [ ! -s "$rundir/key.pem" ]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
	    -nodes -days 365 -subj "/CN=localhost" \
	    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
	    -keyout "$rundir/key.pem" -out "$rundir/cert.pem" 2>/dev/null
	chmod 0600 "$rundir/key.pem"
	echo "run: made a self-signed certificate in $rundir/cert.pem"
fi

# --- the development IdP ------------------------------------------------

idp_pid=""
idp_off=""

# A CA of its own and a certificate for 127.0.0.1 it signed, so that
# authd verifies the IdP against ca-file as it would a real one.
idp_certs() {
	[ -s "$idpdir/ca.pem" ] && [ -s "$idpdir/server.pem" ] &&
	    [ -s "$idpdir/server-key.pem" ] && return 0
	curve="-newkey ec -pkeyopt ec_paramgen_curve:P-256"
	openssl req -x509 $curve -nodes -days 365 \
	    -subj "/CN=portcullis make run development CA" \
	    -addext "basicConstraints=critical,CA:TRUE" \
	    -addext "keyUsage=critical,keyCertSign,cRLSign" \
	    -keyout "$idpdir/ca-key.pem" -out "$idpdir/ca.pem" 2>/dev/null &&
	openssl req -new $curve -nodes -subj "/CN=127.0.0.1" \
	    -keyout "$idpdir/server-key.pem" -out "$idpdir/server.csr" \
	    2>/dev/null &&
	printf '%s\n' "basicConstraints=CA:FALSE" \
	    "keyUsage=critical,digitalSignature" \
	    "extendedKeyUsage=serverAuth" \
	    "subjectAltName=IP:127.0.0.1,DNS:localhost" > "$idpdir/server.ext" &&
	openssl x509 -req -in "$idpdir/server.csr" -CA "$idpdir/ca.pem" \
	    -CAkey "$idpdir/ca-key.pem" -CAcreateserial -days 365 \
	    -extfile "$idpdir/server.ext" -out "$idpdir/server.pem" \
	    2>/dev/null &&
	chmod 0600 "$idpdir/ca-key.pem" "$idpdir/server-key.pem"
}

# An IdP left over from a run that was not stopped with Ctrl-C.
idp_stop_stale() {
	[ -s "$idpdir/idp.pid" ] || return 0
	pid=$(cat "$idpdir/idp.pid")
	if grep -q server.js "/proc/$pid/cmdline" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		sleep 0.5
	fi
	rm -f "$idpdir/idp.pid"
}

# Start server.js in the background; its stderr (the banner and one line
# per request) goes to this terminal.  Returns 1 with $idp_off set to
# the reason when it cannot run.
idp_start() {
	if ! command -v "$node" >/dev/null 2>&1; then
		idp_off="Node.js ($node) is not installed"
		return 1
	fi
	if ! command -v npm >/dev/null 2>&1; then
		idp_off="npm is not installed"
		return 1
	fi
	if [ ! -e "$oauthdir/node_modules/.package-lock.json" ]; then
		echo "run: installing the IdP's npm packages (npm ci, once)"
		if ! (cd "$oauthdir" && npm ci --no-audit --no-fund \
		    --loglevel=error >"$idpdir/npm.log" 2>&1); then
			idp_off="npm ci failed (no npm registry?), see $idpdir/npm.log"
			return 1
		fi
	fi
	if ! idp_certs; then
		idp_off="openssl could not make the IdP's certificates"
		return 1
	fi
	umask 077
	printf '%s\n' "$idp_secret" > "$idpdir/client.secret"
	umask 022
	idp_stop_stale
	# As root, the IdP (npm code) runs as nobody, where nobody can
	# reach its files (not in a checkout under a private home).
	drop=""
	if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null 2>&1; then
		chown nobody "$idpdir/server-key.pem"
		drop="setpriv --reuid=nobody --regid=nogroup --clear-groups"
		$drop test -r "$oauthdir/node_modules/.package-lock.json" \
		    -a -r "$idpdir/server-key.pem" 2>/dev/null || drop=""
	fi
	: > "$idpdir/idp.out"
	(cd "$oauthdir" && exec $drop "$node" server.js --demo yes \
	    --port "$idp_port" --admin-port "$idp_admin_port" \
	    --tls-cert "$idpdir/server.pem" \
	    --tls-key "$idpdir/server-key.pem" \
	    </dev/null >"$idpdir/idp.out") &
	idp_pid=$!
	echo "$idp_pid" > "$idpdir/idp.pid"
	i=0
	while [ $i -lt 150 ]; do
		grep -q READY "$idpdir/idp.out" 2>/dev/null && return 0
		if ! kill -0 "$idp_pid" 2>/dev/null; then
			idp_pid=""
			rm -f "$idpdir/idp.pid"
			idp_off="the IdP exited at start, its error is above (ports $idp_port, $idp_admin_port taken? Node.js older than 20?)"
			return 1
		fi
		sleep 0.1
		i=$((i + 1))
	done
	idp_off="the IdP did not start within 15 s"
	kill "$idp_pid" 2>/dev/null || true
	idp_pid=""
	rm -f "$idpdir/idp.pid"
	return 1
}

idp_cleanup() {
	if [ -n "$idp_pid" ]; then
		kill "$idp_pid" 2>/dev/null || true
		rm -f "$idpdir/idp.pid"
	fi
}

trap idp_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

remote=yes
idp_start || remote=no

# --- the configuration and the demo user --------------------------------

drop_remote=""
[ "$remote" = yes ] || drop_remote='/^# remote: begin/,/^# remote: end/d'
sed -e "$drop_remote" -e "s|@RUNDIR@|$rundir|g" -e "s|@USER@|$user|g" \
    -e "s|@AUTHUSER@|$authuser|g" -e "s|@SMTP_PORT@|$smtp_port|g" \
    -e "s|@SMTPS_PORT@|$smtps_port|g" -e "s|@IDP_PORT@|$idp_port|g" \
    etc/dev.conf > "$rundir/portcullis.conf"

# The demo user, in the LMDB store (loopback listeners only).
if ! "$authctl" -f "$rundir/portcullis.conf" user show \
    demo@example.org >/dev/null 2>&1; then
	printf 'demo\n' | "$authctl" -f "$rundir/portcullis.conf" \
	    user add demo@example.org --password-stdin \
	    --address demo@example.org
	echo "run: created the demo user demo@example.org, password demo"
fi

# Every run starts with an empty login cache, so that the first remote
# login goes to the IdP as README.md shows.
if [ "$remote" = yes ]; then
	"$authctl" -f "$rundir/portcullis.conf" cache flush >/dev/null
fi

cat <<TXT
run: starting portcullisd -d -f $rundir/portcullis.conf
     $who
     listening on 127.0.0.1:$smtp_port (plaintext, STARTTLS) and 127.0.0.1:$smtps_port (implicit TLS)
     try:    printf 'QUIT\\r\\n' | nc 127.0.0.1 $smtp_port
     local:  demo@example.org, password demo (in $rundir/db)
TXT
if [ "$remote" = yes ]; then
	cat <<TXT
     remote: alice@example.org, password alice-password, known only to the
             development IdP at https://127.0.0.1:$idp_port (pid $idp_pid, not for production)
     chain:  cache -> local -> idp
     counts: curl -s http://127.0.0.1:$idp_admin_port/stats
     stop the IdP:  kill \$(cat $idpdir/idp.pid)
     stop all:      Ctrl-C
TXT
else
	cat <<TXT
run: remote part off: $idp_off; the chain is the local store alone
     stop:   Ctrl-C
TXT
fi

PORTCULLIS_LIBEXEC="$bin" "$bin/portcullisd" -d \
    -f "$rundir/portcullis.conf"
