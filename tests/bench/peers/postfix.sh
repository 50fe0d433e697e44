#!/bin/bash
# Private Postfix + private Dovecot (SASL only) peer for portcullis's benchmark.
#
#   postfix.sh start DIR PORT USERFILE [SMTPS_PORT]
#   postfix.sh stop  DIR
#   postfix.sh pids  DIR          # every pid of this instance (postfix + dovecot), one per line
#
# DIR gets everything: etc/ (main.cf, master.cf), queue/ (queue_directory, fsync'd),
# data/, postfix.log, tls/{cert,key}.pem (self-signed, STARTTLS), dovecot/ (dovecot.conf,
# passwd in sha512-crypt, run/ = base_dir with the auth-client socket, dovecot.log).
# Listens on 127.0.0.1:PORT: plaintext + STARTTLS (smtpd_tls_security_level = may),
# and on SMTPS_PORT (if given) with implicit TLS; AUTH PLAIN/LOGIN against USERFILE
# ("user:password" lines); relays any recipient for authenticated clients, and
# accepts mail to the USERFILE's first domain without AUTH (as portcullis does for
# its local domains); delivers everything to the discard transport.
# PEER_TLS_CERT and PEER_TLS_KEY, when set, are the certificate and key to use (the
# bench gives every server the same one); else a self-signed RSA-2048 one is made.
# default_process_limit is 300, so that 256 concurrent clients each get an smtpd.
# PEER_DOVECOT_SQL, when set, is a dovecot-sql.conf.ext: Dovecot's passdb is then
# its sql driver (dovecot-pgsql) instead of the passwd-file (sql_bench.py).
set -eu

die() { echo "postfix.sh: $*" >&2; exit 1; }

usage() { echo "usage: $0 start|stop|pids DIR [PORT USERFILE]" >&2; exit 2; }

[ $# -ge 2 ] || usage
CMD=$1
DIR=$2
PORT=${3:-}
USERFILE=${4:-}
SMTPS_PORT=${5:-}

case "$DIR" in /*) ;; *) DIR=$(cd "$DIR" 2>/dev/null && pwd || echo "$PWD/$DIR");; esac

ensure_installed() {
    local need=()
    command -v postfix >/dev/null 2>&1 || [ -x /usr/sbin/postfix ] || need+=(postfix)
    [ -x /usr/sbin/dovecot ] || need+=(dovecot-core)
    [ -z "${PEER_DOVECOT_SQL:-}" ] ||
        [ -e /usr/lib/dovecot/modules/auth/libdriver_pgsql.so ] || need+=(dovecot-pgsql)
    command -v openssl >/dev/null 2>&1 || need+=(openssl)
    [ ${#need[@]} -eq 0 ] && return 0
    echo "postfix.sh: installing ${need[*]}" >&2
    # Keep apt from starting the system postfix/dovecot services.
    local made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    export DEBIAN_FRONTEND=noninteractive
    local rc=0
    apt-get install -y -q -o DPkg::Lock::Timeout=300 "${need[@]}" >&2 || {
        apt-get update -q -o DPkg::Lock::Timeout=300 >&2 || true
        apt-get install -y -q -o DPkg::Lock::Timeout=300 "${need[@]}" >&2 || rc=$?
    }
    [ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
    [ $rc = 0 ] || die "apt-get install ${need[*]} failed"
}

pf_pid() { [ -s "$DIR/queue/pid/master.pid" ] && tr -dc 0-9 < "$DIR/queue/pid/master.pid" || true; }
dc_pid() { [ -s "$DIR/dovecot/run/master.pid" ] && tr -dc 0-9 < "$DIR/dovecot/run/master.pid" || true; }
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# pid and all its descendants
tree() {
    local p=$1 c
    echo "$p"
    for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do tree "$c"; done
}

all_pids() {
    local p
    p=$(pf_pid); alive "$p" && tree "$p"
    p=$(dc_pid); alive "$p" && tree "$p"
    return 0
}

# Port answers with a 220 greeting?
greets() {
    local line
    line=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        IFS= read -r l <&3; printf "QUIT\r\n" >&3; printf "%s" "$l"' _ "$1" 2>/dev/null) || return 1
    case "$line" in 220*) return 0;; *) return 1;; esac
}

# processes whose environment says MAIL_CONFIG=DIR/etc (postfix children of this instance)
env_pids() {
    local f p
    for f in /proc/[0-9]*/environ; do
        p=${f#/proc/}; p=${p%/environ}
        { tr "\\0" "\\n" < "$f"; } 2>/dev/null | grep -qxF "MAIL_CONFIG=$DIR/etc" && echo "$p"
    done
    return 0
}

do_stop() {
    local p i before left
    before=$(all_pids; env_pids)
    if [ -f "$DIR/etc/main.cf" ]; then
        p=$(pf_pid)
        if alive "$p"; then
            postfix -c "$DIR/etc" stop >/dev/null 2>&1 || true
            for i in $(seq 50); do alive "$p" || break; sleep 0.1; done
            alive "$p" && { postfix -c "$DIR/etc" abort >/dev/null 2>&1 || kill -9 "$p" 2>/dev/null || true; }
        fi
    fi
    if [ -f "$DIR/dovecot/dovecot.conf" ]; then
        p=$(dc_pid)
        if alive "$p"; then
            kill -TERM "$p" 2>/dev/null || true
            for i in $(seq 50); do alive "$p" || break; sleep 0.1; done
            alive "$p" && kill -9 "$p" 2>/dev/null || true
        fi
    fi
    # leftovers of THIS instance only: pids seen before, postfix processes with our
    # MAIL_CONFIG, dovecot processes started with our config
    sleep 0.2
    left=$( { echo "$before"; env_pids; ps -eo pid=,args= | grep -F -e "$DIR/dovecot/dovecot.conf" | grep -v -e grep -e postfix.sh | awk '{print $1}'; } | sort -u)
    for p in $left; do
        [ "$p" = "$$" ] && continue
        alive "$p" && kill -9 "$p" 2>/dev/null || true
    done
    echo "postfix.sh: stopped instance in $DIR"
}

hash_users() {
    # user:password -> user:{SHA512-CRYPT}$6$... (5000 rounds)
    local out=$1 line user pass
    : > "$out.tmp"
    while IFS= read -r line || [ -n "$line" ]; do
        case "$line" in ''|'#'*) continue;; esac
        user=${line%%:*}
        pass=${line#*:}
        printf '%s:{SHA512-CRYPT}%s\n' "$user" "$(printf '%s' "$pass" | openssl passwd -6 -stdin)" >> "$out.tmp"
    done < "$USERFILE"
    mv "$out.tmp" "$out"
}

do_start() {
    [ -n "$PORT" ] && [ -n "$USERFILE" ] || usage
    [ -r "$USERFILE" ] || die "cannot read $USERFILE"
    ensure_installed
    alive "$(pf_pid)" && die "an instance already runs in $DIR (stop it first)"
    greets "$PORT" && die "port $PORT already answers"

    mkdir -p "$DIR"
    chmod 755 "$DIR"
    mkdir -p "$DIR/etc" "$DIR/queue" "$DIR/data" "$DIR/tls" "$DIR/dovecot/run" "$DIR/dovecot/state"
    chown root:root "$DIR/queue" "$DIR/etc"; chmod 755 "$DIR/queue" "$DIR/etc"
    chown postfix:postfix "$DIR/data"; chmod 700 "$DIR/data"

    # --- TLS (the bench's, or self-signed) ---
    if [ -n "${PEER_TLS_CERT:-}" ] && [ -n "${PEER_TLS_KEY:-}" ]; then
        cp "$PEER_TLS_CERT" "$DIR/tls/cert.pem"
        cp "$PEER_TLS_KEY" "$DIR/tls/key.pem"
        chmod 600 "$DIR/tls/key.pem"
    elif [ ! -s "$DIR/tls/cert.pem" ]; then
        openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=localhost" \
            -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
            -keyout "$DIR/tls/key.pem" -out "$DIR/tls/cert.pem" >/dev/null 2>&1 \
            || die "openssl req failed"
        chmod 600 "$DIR/tls/key.pem"
    fi

    # --- Dovecot (auth only) ---
    hash_users "$DIR/dovecot/passwd"
    chown root:dovecot "$DIR/dovecot/passwd"; chmod 640 "$DIR/dovecot/passwd"
    cat > "$DIR/dovecot/dovecot.conf" <<DC
# private dovecot: SASL auth service for the private postfix only
instance_name = peer-dovecot-$PORT
base_dir = $DIR/dovecot/run
state_dir = $DIR/dovecot/state
log_path = $DIR/dovecot/dovecot.log
info_log_path = $DIR/dovecot/dovecot.log
protocols =
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_cache_size = 0
passdb {
$(if [ -n "${PEER_DOVECOT_SQL:-}" ]; then
    printf '  driver = sql\n  args = %s\n' "$PEER_DOVECOT_SQL"
else
    printf '  driver = passwd-file\n  args = scheme=SHA512-CRYPT %s\n' "$DIR/dovecot/passwd"
fi)
}
userdb {
  driver = static
  args = uid=65534 gid=65534 home=/nonexistent
}
service auth {
  unix_listener auth-client {
    mode = 0660
    user = postfix
    group = postfix
  }
}
service stats {
  unix_listener stats-reader {
    mode = 0600
  }
  unix_listener stats-writer {
    mode = 0600
  }
}
DC
    dovecot -c "$DIR/dovecot/dovecot.conf" || { cat "$DIR/dovecot/dovecot.log" 2>/dev/null >&2; die "dovecot failed to start"; }
    local i
    for i in $(seq 100); do [ -S "$DIR/dovecot/run/auth-client" ] && break; sleep 0.1; done
    [ -S "$DIR/dovecot/run/auth-client" ] || { tail -n 30 "$DIR/dovecot/dovecot.log" >&2; do_stop >&2; die "dovecot auth socket did not appear"; }

    # --- Postfix ---
    local domain
    domain=$(sed -n 's/^[^#:]*@\([^:]*\):.*/\1/p' "$USERFILE" | head -n1)
    cat > "$DIR/etc/main.cf" <<PF
# private postfix peer (portcullis benchmark)
compatibility_level = 3.6
queue_directory = $DIR/queue
data_directory = $DIR/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = $DIR/postfix.log
maillog_file_prefixes = $DIR
syslog_name = peer-postfix-$PORT
myhostname = peer-postfix.localdomain
mydomain = localdomain
myorigin = \$myhostname
mydestination =
relay_domains = ${domain:-example.org}
# 256 concurrent clients each get an smtpd (the default is 100)
default_process_limit = 300
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
# only used to exempt the load generator from anvil limits; NOT in any restriction
mynetworks = 127.0.0.0/8
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
biff = no
append_dot_mydomain = no
alias_maps =
alias_database =
local_recipient_maps =
# no DNS
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
# everything is discarded after the (fsync'd) queue file is written
default_transport = discard
relay_transport = discard
local_transport = discard
virtual_transport = discard
content_filter =
# SASL via the private dovecot
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = $DIR/dovecot/run/auth-client
smtpd_sasl_security_options = noanonymous
broken_sasl_auth_clients = no
smtpd_sasl_authenticated_header = no
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions = permit_sasl_authenticated, permit_auth_destination, reject
# STARTTLS
smtpd_tls_security_level = may
smtpd_tls_auth_only = no
smtpd_tls_cert_file = $DIR/tls/cert.pem
smtpd_tls_key_file = $DIR/tls/key.pem
smtpd_tls_loglevel = 0
PF
    cat > "$DIR/etc/master.cf" <<MC
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:$PORT inet n     -       n       -       -       smtpd
$([ -n "$SMTPS_PORT" ] && echo "127.0.0.1:$SMTPS_PORT inet n - n - - smtpd -o smtpd_tls_wrappermode=yes")
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
MC
    : > "$DIR/postfix.log"
    # postfix prints its fatal errors only to a tty (or to syslog, absent here): give it a pty
    if ! script -qec "postfix -c '$DIR/etc' start" /dev/null >"$DIR/postfix-start.out" 2>&1 </dev/null; then
        cat "$DIR/postfix-start.out" "$DIR/postfix.log" >&2
        do_stop >&2; die "postfix start failed"
    fi
    local up=0
    for i in $(seq 100); do
        if greets "$PORT"; then up=1; break; fi
        sleep 0.1
    done
    if [ $up = 0 ]; then
        echo "---- $DIR/postfix.log ----" >&2; cat "$DIR/postfix.log" "$DIR/postfix-start.out" >&2
        do_stop >&2; die "postfix did not answer 220 on 127.0.0.1:$PORT within 10 s"
    fi
    echo "postfix.sh: up on 127.0.0.1:$PORT (plaintext + STARTTLS)${SMTPS_PORT:+, :$SMTPS_PORT (smtps)}"
    echo "  postfix master pid: $(pf_pid)  (pid file $DIR/queue/pid/master.pid)"
    echo "  dovecot master pid: $(dc_pid)  (pid file $DIR/dovecot/run/master.pid)"
    echo "  config: $DIR/etc/main.cf $DIR/etc/master.cf $DIR/dovecot/dovecot.conf"
    echo "  logs:   $DIR/postfix.log $DIR/dovecot/dovecot.log"
    echo "  tls:    cert $DIR/tls/cert.pem key $DIR/tls/key.pem"
    echo "  users:  $DIR/dovecot/passwd (sha512-crypt)"
    echo "  all pids: $(all_pids | tr '\n' ' ')"
}

case "$CMD" in
    start) do_start ;;
    stop)  do_stop ;;
    pids)  all_pids ;;
    *) usage ;;
esac
