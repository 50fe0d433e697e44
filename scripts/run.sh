#!/bin/sh
# run.sh -- `make run`: prepare ./run/ and start portcullisd in the
# foreground with the development configuration.  Ctrl-C stops it.

set -eu

BUILD=${BUILD:?BUILD must name the build directory}
top=$(pwd)
rundir="$top/run"

umask 022
mkdir -p "$rundir/db" "$rundir/spool" "$rundir/empty"
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

sed -e "s|@RUNDIR@|$rundir|g" -e "s|@USER@|$user|g" \
    -e "s|@AUTHUSER@|$authuser|g" etc/dev.conf > "$rundir/portcullis.conf"

# The demo user, in the LMDB store (loopback listeners only).
if ! "$top/$BUILD/authctl" -f "$rundir/portcullis.conf" user show \
    demo@example.org >/dev/null 2>&1; then
	printf 'demo\n' | "$top/$BUILD/authctl" -f "$rundir/portcullis.conf" \
	    user add demo@example.org --password-stdin \
	    --address demo@example.org
	echo "run: created the demo user demo@example.org, password demo"
fi

cat <<TXT
run: starting portcullisd -d -f $rundir/portcullis.conf
     $who
     listening on 127.0.0.1:2525 (plaintext, STARTTLS) and 127.0.0.1:4650 (implicit TLS)
     try:    printf 'QUIT\\r\\n' | nc 127.0.0.1 2525
     mail:   printf 'Subject: hi\\r\\n\\r\\nHello.\\r\\n' > msg.txt
             curl smtp://127.0.0.1:2525 --login-options AUTH=PLAIN \\
                 -u demo@example.org:demo --mail-from demo@example.org \\
                 --mail-rcpt someone@example.net --upload-file msg.txt
             ls $rundir/spool/new/
     stop:   Ctrl-C
TXT

PORTCULLIS_LIBEXEC="$top/$BUILD" exec "$top/$BUILD/portcullisd" -d \
    -f "$rundir/portcullis.conf"
