#!/bin/bash
# Private OpenSMTPD (Debian 12: 6.8.0p2) peer for portcullis's benchmark.
#
#   opensmtpd.sh start DIR PORT USERFILE [SMTPS_PORT [PLAIN_PORT]]
#   opensmtpd.sh stop  DIR
#   opensmtpd.sh pids  DIR      # every pid of this instance, one per line
#
# The package is fetched with `apt-get download opensmtpd` and unpacked (dpkg -x) into
# DIR/pkg (it conflicts with postfix in apt). Runs `DIR/pkg/usr/sbin/smtpd -d -f
# DIR/smtpd.conf` in the background (pid in DIR/smtpd.pid, log DIR/smtpd.log).
#
# Listeners, all on 127.0.0.1:
#  * PORT: STARTTLS offered, AUTH PLAIN/LOGIN after it against DIR/creds (the USERFILE's
#    users, sha512-crypt), authenticated mail to any recipient is accepted;
#  * SMTPS_PORT (if given): the same over implicit TLS;
#  * PLAIN_PORT (if given): plaintext without AUTH; mail from loopback to the
#    recipients in DIR/virtual only.
# Recipients it knows, with or without AUTH: rcpt0..rcpt15@ the USERFILE's first domain
# (DIR/virtual, a table lookup: any other recipient gets 550 or 524 5.2.4).
# OpenSMTPD 6.8 refuses AUTH on a listener without TLS ("auth requires tls/smtps"): it
# cannot serve authenticated plaintext.
#
# TLS under OpenSSL 3: Debian 12's build fails every handshake ("missing private key":
# its privsep key marking lands on a cached legacy copy of the key). OPENSMTPD_TLS_SHIM
# names our LD_PRELOAD work-around (opensmtpd_tls_shim.c, built by make bench); without
# it TLS fails as shipped.
#
# Durability: OpenSMTPD does NOT fsync the queued message before its 250 (queue_fs
# writes and renames; no fsync). Delivery is `mda "cat > /dev/null"` as user nobody.
# The mda wrapper /usr/libexec/opensmtpd/mail.mda is a compiled-in path: the helpers
# are copied there from DIR/pkg if missing.
#
# PEER_TLS_CERT and PEER_TLS_KEY, when set, are the certificate and key to use (the
# bench gives every server the same one); else a self-signed RSA-2048 one is made.
#
# The queue (/var/spool/smtpd) and control socket (/var/run/smtpd.sock) are compiled
# in: only ONE OpenSMTPD instance can run on the machine at a time.
set -eu

die() { echo "opensmtpd.sh: $*" >&2; exit 1; }
usage() { echo "usage: $0 start|stop|pids DIR [PORT USERFILE]" >&2; exit 2; }

[ $# -ge 2 ] || usage
CMD=$1
DIR=$2
PORT=${3:-}
USERFILE=${4:-}
SMTPS_PORT=${5:-}
PLAIN_PORT=${6:-}
case "$DIR" in /*) ;; *) DIR=$(cd "$DIR" 2>/dev/null && pwd || echo "$PWD/$DIR");; esac
SMTPD=$DIR/pkg/usr/sbin/smtpd

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
main_pid() { [ -s "$DIR/smtpd.pid" ] && tr -dc 0-9 < "$DIR/smtpd.pid" || true; }
tree() {
    local p=$1 c
    echo "$p"
    for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do tree "$c"; done
}
all_pids() { local p; p=$(main_pid); alive "$p" && tree "$p"; return 0; }

greets() {
    local line
    line=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        IFS= read -r l <&3; printf "QUIT\r\n" >&3; printf "%s" "$l"' _ "$1" 2>/dev/null) || return 1
    case "$line" in 220*) return 0;; *) return 1;; esac
}

ensure_installed() {
    export DEBIAN_FRONTEND=noninteractive
    command -v openssl >/dev/null 2>&1 || apt-get install -y -q -o DPkg::Lock::Timeout=300 openssl >&2
    if [ ! -x "$SMTPD" ]; then
        mkdir -p "$DIR/pkg"
        local deb
        deb=$(ls "$DIR"/opensmtpd_*.deb 2>/dev/null | head -n1 || true)
        if [ -z "$deb" ]; then
            (cd "$DIR" && apt-get download -q opensmtpd >&2) || {
                apt-get update -q -o DPkg::Lock::Timeout=300 >&2 || true
                (cd "$DIR" && apt-get download -q opensmtpd >&2)
            } || die "apt-get download opensmtpd failed"
            deb=$(ls "$DIR"/opensmtpd_*.deb | head -n1)
        fi
        dpkg -x "$deb" "$DIR/pkg"
    fi
    # runtime libraries (normally present)
    if ldd "$SMTPD" | grep -q 'not found'; then
        apt-get install -y -q -o DPkg::Lock::Timeout=300 libevent-2.1-7 libdb5.3 libssl3 libcrypt1 >&2
    fi
    # mda commands are run through the compiled-in /usr/libexec/opensmtpd/mail.mda
    if [ ! -x /usr/libexec/opensmtpd/mail.mda ]; then
        mkdir -p /usr/libexec/opensmtpd
        cp -a "$DIR/pkg/usr/libexec/opensmtpd/." /usr/libexec/opensmtpd/
    fi
    local u
    for u in opensmtpd opensmtpq; do
        getent passwd "$u" >/dev/null || useradd --system --no-create-home \
            --home-dir /var/lib/opensmtpd/empty --shell /usr/sbin/nologin --user-group "$u"
    done
    mkdir -p /var/spool/smtpd /var/lib/opensmtpd/empty
    chmod 0711 /var/spool/smtpd
    chmod 0755 /var/lib/opensmtpd/empty
}

do_stop() {
    local p i pids
    p=$(main_pid)
    if alive "$p"; then
        pids=$(all_pids)
        kill -TERM "$p" 2>/dev/null || true
        for i in $(seq 50); do alive "$p" || break; sleep 0.1; done
        sleep 0.2
        for i in $pids; do alive "$i" && kill -9 "$i" 2>/dev/null || true; done
    fi
    rm -f "$DIR/smtpd.pid"
    echo "opensmtpd.sh: stopped instance in $DIR"
}

do_start() {
    [ -n "$PORT" ] && [ -n "$USERFILE" ] || usage
    [ -r "$USERFILE" ] || die "cannot read $USERFILE"
    mkdir -p "$DIR"; chmod 755 "$DIR"
    alive "$(main_pid)" && die "an instance already runs in $DIR (stop it first)"
    ensure_installed
    # another OpenSMTPD (shared spool/control socket)?
    if [ -S /var/run/smtpd.sock ] && ps -eo args= | grep -q '^[^ ]*smtpd.*-f '; then
        ps -eo pid=,args= | grep -E '[s]mtpd .*-f ' >&2 || true
        die "another OpenSMTPD seems to run (spool and /var/run/smtpd.sock are shared): stop it first"
    fi
    greets "$PORT" && die "port $PORT already answers"

    # credentials table: "user $6$..." (sha512-crypt, 5000 rounds)
    local line user pass
    : > "$DIR/creds.tmp"
    while IFS= read -r line || [ -n "$line" ]; do
        case "$line" in ''|'#'*) continue;; esac
        user=${line%%:*}; pass=${line#*:}
        printf '%s %s\n' "$user" "$(printf '%s' "$pass" | openssl passwd -6 -stdin)" >> "$DIR/creds.tmp"
    done < "$USERFILE"
    mv "$DIR/creds.tmp" "$DIR/creds"
    chown root:opensmtpd "$DIR/creds"; chmod 640 "$DIR/creds"

    # recipients it knows (an unknown one gets 524 5.2.4): all go to user nobody
    local domain i
    domain=$(sed -n 's/^[^#:]*@\([^:]*\):.*/\1/p' "$USERFILE" | head -n1)
    : > "$DIR/virtual"
    for i in $(seq 0 15); do echo "rcpt$i@${domain:-example.org} nobody" >> "$DIR/virtual"; done

    mkdir -p "$DIR/tls"
    if [ -n "${PEER_TLS_CERT:-}" ] && [ -n "${PEER_TLS_KEY:-}" ]; then
        cp "$PEER_TLS_CERT" "$DIR/tls/cert.pem"
        cp "$PEER_TLS_KEY" "$DIR/tls/key.pem"
        chmod 600 "$DIR/tls/key.pem"
    elif [ ! -s "$DIR/tls/cert.pem" ]; then
        openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=localhost" \
            -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
            -keyout "$DIR/tls/key.pem" -out "$DIR/tls/cert.pem" >/dev/null 2>&1
        chmod 600 "$DIR/tls/key.pem"
    fi
    local listen="listen on 127.0.0.1 port $PORT tls pki localhost auth <creds> hostname peer-opensmtpd.localdomain"
    [ -n "$SMTPS_PORT" ] && listen="$listen
listen on 127.0.0.1 port $SMTPS_PORT smtps pki localhost auth <creds> hostname peer-opensmtpd.localdomain"
    [ -n "$PLAIN_PORT" ] && listen="$listen
listen on 127.0.0.1 port $PLAIN_PORT hostname peer-opensmtpd.localdomain"
    cat > "$DIR/smtpd.conf" <<CONF
# private OpenSMTPD peer (portcullis benchmark)
pki localhost cert "$DIR/tls/cert.pem"
pki localhost key "$DIR/tls/key.pem"
table creds file:$DIR/creds
table vmap file:$DIR/virtual
action "sink" mda "cat > /dev/null" virtual <vmap>
$listen
match from any auth for any action "sink"
match from local for domain "${domain:-example.org}" action "sink"
CONF
    "$SMTPD" -n -f "$DIR/smtpd.conf" >/dev/null 2>"$DIR/smtpd-check.out" || { cat "$DIR/smtpd-check.out" >&2; die "bad config"; }

    # -d: foreground, logs to stderr (there is no syslog here); we background it ourselves
    : > "$DIR/smtpd.log"
    local preload=""
    if [ -n "${OPENSMTPD_TLS_SHIM:-}" ]; then
        [ -r "$OPENSMTPD_TLS_SHIM" ] || die "OPENSMTPD_TLS_SHIM $OPENSMTPD_TLS_SHIM: not readable"
        preload=$OPENSMTPD_TLS_SHIM
    fi
    # It sizes its session table from the descriptor limit.
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    # Its resolver (asr: "lookup bind file") asks DNS for every client's PTR
    # first; with no DNS server reachable a session then waits 5 s for its
    # greeting. Give it, in a mount namespace of its own, a resolv.conf that
    # says "lookup file" (/etc/hosts only); the machine's stays untouched.
    printf 'lookup file\n' > "$DIR/resolv.conf"
    local ns=()
    if unshare -m true 2>/dev/null; then
        ns=(unshare -m sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$DIR/resolv.conf")
    else
        echo "opensmtpd.sh: no mount namespace: its DNS lookups may stall sessions" >&2
    fi
    LD_PRELOAD=$preload setsid "${ns[@]}" "$SMTPD" -d -f "$DIR/smtpd.conf" >>"$DIR/smtpd.log" 2>&1 </dev/null &
    echo $! > "$DIR/smtpd.pid"
    local i up=0
    for i in $(seq 100); do
        if greets "$PORT"; then up=1; break; fi
        alive "$(main_pid)" || break
        sleep 0.1
    done
    if [ $up = 0 ]; then
        echo "---- $DIR/smtpd.log ----" >&2; cat "$DIR/smtpd.log" >&2
        do_stop >&2; die "OpenSMTPD did not answer 220 on 127.0.0.1:$PORT within 10 s"
    fi
    echo "opensmtpd.sh: up on 127.0.0.1:$PORT (STARTTLS + AUTH)${SMTPS_PORT:+, :$SMTPS_PORT (smtps + AUTH)}${PLAIN_PORT:+, :$PLAIN_PORT (plaintext, no AUTH)}"
    echo "  TLS shim: ${preload:-none (TLS fails under OpenSSL 3)}"
    echo "  smtpd parent pid: $(main_pid)  (pid file $DIR/smtpd.pid; its children are the privsep processes)"
    echo "  config: $DIR/smtpd.conf  creds: $DIR/creds  log: $DIR/smtpd.log"
    echo "  all pids: $(all_pids | tr '\n' ' ')"
}

case "$CMD" in
    start) do_start ;;
    stop)  do_stop ;;
    pids)  all_pids ;;
    *) usage ;;
esac
