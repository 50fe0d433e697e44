"""
ldap_bench.py -- the LDAP part of make bench (also runs alone).

Two figures, against a real OpenLDAP (Debian's slapd, started as in the
integration tests, tests/integration/slapd.py) holding 50 users with
{SSHA} passwords:

- AUTH PLAIN sessions/s at c=16, each login checked by the directory
  (a search, then a bind as the user): portcullis's ldap checker
  (password bind) side by side with Postfix + Dovecot's LDAP passdb
  (auth_bind = yes, no auth cache), both against the same slapd;
- the rate of local (LMDB) logins, alone and while the directory hangs
  (a socket that accepts and never answers) and 16 other clients wait
  on it.

Everything comes from smtpload(1) in this run; the ratios are the
result.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))

from daemon import BUILD, Daemon, free_port  # noqa: E402
from benchutil import log, smtpload  # noqa: E402
import slapd  # noqa: E402

AUTHCTL = os.path.join(BUILD, "authctl")
PEER = os.path.join(HERE, "peers", "postfix.sh")
DURATION = int(os.environ.get("BENCH_SECONDS", "8"))
DOMAIN = "bench.test"
NUSERS = 50
BASE = "ou=people," + slapd.SUFFIX


def write_users(path, users):
    with open(path, "w") as f:
        for u, p in users:
            f.write("%s:%s\n" % (u, p))
    os.chmod(path, 0o644)


def ldap_conf(d, url, hung_url=None):
    secret = os.path.join(d.dir, "ldap.secret")
    with open(secret, "w") as f:
        f.write(slapd.READER_PW + "\n")
    os.chmod(secret, 0o600)
    return ('\tchecker "dir" ldap {\n\t\turl %s\n\t\tbase "%s"\n'
            '\t\tbind-dn "%s"\n\t\tbind-password-file "%s"\n'
            '\t\tpassword bind\n\t\tconnections 16\n\t\ttimeout 5s\n\t}\n'
            % (hung_url or url, BASE, slapd.READER_DN, secret))


def daemon(url, local_import=None, hung_url=None):
    d = Daemon(workers=os.cpu_count(), local_domains=[DOMAIN],
               max_sessions=200000, max_sessions_per_address=200000)
    text = "auth {\n"
    if local_import:
        text += '\tchecker "local" lmdb "%s/db"\n' % d.dir
    text += ldap_conf(d, url, hung_url)
    text += "\tfailure-delay 0s\n}\n"
    d.conf_extra = text
    d.write_conf()
    if local_import:
        subprocess.run([AUTHCTL, "-f", d.conf, "user", "import",
                        local_import], check=True, capture_output=True)
    d.start()
    return d


def dovecot_ldap(peerdir, dir_url):
    """Turn the peer's Dovecot passdb into LDAP with auth_bind, and
    restart Dovecot: Postfix keeps asking the same socket."""
    dc = os.path.join(peerdir, "dovecot")
    ext = os.path.join(dc, "dovecot-ldap.conf.ext")
    with open(ext, "w") as f:
        f.write("uris = %s\ndn = %s\ndnpass = %s\nauth_bind = yes\n"
                "ldap_version = 3\nbase = %s\nscope = subtree\n"
                "pass_filter = (uid=%%u)\npass_attrs = uid=user\n"
                % (dir_url, slapd.READER_DN, slapd.READER_PW, BASE))
    os.chmod(ext, 0o600)
    conf = os.path.join(dc, "dovecot.conf")
    with open(conf) as f:
        text = f.read()
    text = re.sub(r"passdb \{.*?\n\}\n",
                  "passdb {\n  driver = ldap\n  args = %s\n}\n" % ext,
                  text, count=1, flags=re.S)
    with open(conf, "w") as f:
        f.write(text)
    pidfile = os.path.join(dc, "run", "master.pid")
    with open(pidfile) as f:
        pid = int(f.read().strip())
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    sock = os.path.join(dc, "run", "auth-client")
    subprocess.run(["dovecot", "-c", conf], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    for _ in range(100):
        if os.path.exists(sock):
            return
        time.sleep(0.05)
    raise RuntimeError("dovecot did not come back with its LDAP passdb")


class Hung:
    """Accepts and never answers."""

    def __init__(self):
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(256)
        self.url = "ldap://127.0.0.1:%d" % self.s.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                self.conns.append(self.s.accept()[0])
            except OSError:
                return

    def close(self):
        self.s.close()
        for c in self.conns:
            c.close()


def rate(res):
    return res.get("sessions_per_s") if res else None


def errors(res):
    return (res or {}).get("errors", 0)


def run(workdir=None, local_users=None, local_hashes=None):
    """The rows of the LDAP table: (what, figure, unit)."""
    own = workdir is None
    if own:
        workdir = tempfile.mkdtemp(prefix="portcullis-ldap-bench-")
        os.chmod(workdir, 0o755)
    ldir = os.path.join(workdir, "ldap")
    os.makedirs(ldir, exist_ok=True)
    os.chmod(ldir, 0o755)
    users = [("d%d@%s" % (i, DOMAIN), "dpw-%d" % i) for i in range(NUSERS)]
    entries = []
    for i, (u, p) in enumerate(users):
        entries.append("dn: cn=d%d,%s\nobjectClass: inetOrgPerson\n"
                       "uid: %s\ncn: d%d\nsn: d%d\nmail: %s\n"
                       "userPassword: %s\n\n"
                       % (i, BASE, u, i, i, u,
                          slapd.slappasswd("{SSHA}", p)))
    srv = slapd.Slapd(ldir, "bench")
    rows = []
    daemons = []
    peerdir = os.path.join(workdir, "dovecot-ldap-peer")
    peer_up = False
    hung = None
    try:
        srv.start(entries)
        ufile = os.path.join(workdir, "ldap-users.txt")
        write_users(ufile, users)
        auth = ["-c", 16, "-t", DURATION, "-m", 0, "--auth", ufile]

        d = daemon(srv.url)
        daemons.append(d)
        log("ldap: portcullis, AUTH PLAIN checked by slapd, c=16")
        smtpload(d.port, "-c", 16, "-n", 200, "-m", 0, "--auth", ufile)
        mine = smtpload(d.port, *auth)
        d.stop()
        daemons.remove(d)

        peer = None
        log("ldap: Postfix + Dovecot (LDAP passdb, auth_bind), c=16")
        port = free_port()
        # Its daemons keep what they inherit open: a file, not a pipe.
        plog = os.path.join(workdir, "dovecot-ldap-peer.log")
        with open(plog, "w") as out:
            p = subprocess.run(["bash", PEER, "start", peerdir, str(port),
                                ufile], stdout=out, stderr=out,
                               stdin=subprocess.DEVNULL)
        if p.returncode == 0:
            peer_up = True
            try:
                dovecot_ldap(peerdir, srv.url)
                smtpload(port, "-c", 16, "-n", 200, "-m", 0, "--auth",
                         ufile)
                peer = smtpload(port, *auth)
            except (OSError, RuntimeError, subprocess.CalledProcessError) \
                    as e:
                log("ldap: the Dovecot peer failed: %s" % e)
        else:
            with open(plog) as f:
                log("ldap: the Dovecot peer did not start: %s"
                    % f.read()[-500:])
        rm, rp = rate(mine), rate(peer)
        rows.append(("AUTH PLAIN sessions/s, c=16, portcullis (ldap "
                     "checker, bind)", rm if not errors(mine) else None,
                     "sessions/s"))
        rows.append(("AUTH PLAIN sessions/s, c=16, Postfix + Dovecot "
                     "(LDAP passdb, auth_bind)",
                     rp if not errors(peer) else None, "sessions/s"))
        if rm and rp and not errors(mine) and not errors(peer):
            rows.append(("portcullis / Dovecot", rm / rp,
                         "x (target >= 1.5)"))
        rows.append(("errors in these runs (portcullis / Dovecot)",
                     "%d / %d" % (errors(mine), errors(peer)), ""))

        # Local logins while the directory hangs.
        local = local_users or [("l%d@%s" % (i, DOMAIN), "lpw-%d" % i)
                                for i in range(NUSERS)]
        lfile = os.path.join(workdir, "ldap-local-users.txt")
        write_users(lfile, local)
        imp = os.path.join(workdir, "ldap-local-import.txt")
        with open(imp, "w") as f:
            for u, pw in local:
                h = (local_hashes or {}).get(u) or subprocess.run(
                    ["openssl", "passwd", "-6", pw], capture_output=True,
                    text=True, check=True).stdout.strip()
                f.write("%s:{SHA512-CRYPT}%s\n" % (u, h))
        lbase = ["-c", 16, "-t", DURATION, "-m", 0, "--auth", lfile]
        d = daemon(srv.url, local_import=imp)
        daemons.append(d)
        log("ldap: local logins, directory fine")
        normal = smtpload(d.port, *lbase)
        d.stop()
        daemons.remove(d)
        hung = Hung()
        d = daemon(srv.url, local_import=imp, hung_url=hung.url)
        daemons.append(d)
        stop = threading.Event()

        def hammer():
            while not stop.is_set():
                smtpload(d.port, "-c", 16, "-t", 3, "-m", 0, "--auth",
                         ufile)
        th = threading.Thread(target=hammer)
        th.start()
        time.sleep(1)
        log("ldap: local logins, directory hung")
        hungres = smtpload(d.port, *lbase)
        stop.set()
        th.join(30)
        rn, rh = rate(normal), rate(hungres)
        rows.append(("local (LMDB) logins/s, directory fine", rn,
                     "auths/s"))
        rows.append(("local (LMDB) logins/s, directory hung, 16 clients "
                     "waiting on it", rh, "auths/s"))
        if rn and rh:
            rows.append(("hung / fine", rh / rn, "(target >= 0.90)"))
        rows.append(("errors in the local runs",
                     errors(normal) + errors(hungres), ""))
    finally:
        for d in daemons:
            d.stop()
        if hung is not None:
            hung.close()
        if peer_up:
            subprocess.run(["bash", PEER, "stop", peerdir],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        srv.stop()
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
    return rows


def print_rows(rows):
    import table  # tests/bench, beside this file
    table.print_rows("### LDAP (one slapd, {SSHA} users, each login "
                     "checked by the directory)", rows)


if __name__ == "__main__":
    print_rows(run())
