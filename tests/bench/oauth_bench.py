"""
oauth_bench.py -- the OAuth part of make bench (also runs alone).

Two figures, both against the real authorization server of the
integration tests (oidc-provider and @node-oauth/oauth2-server), made to
answer every request 50 ms late:

- login latency (AUTH PLAIN through the password grant), median and
  p99, without a cache (every login asks the provider) and with one
  (warm: every user logged in once before);
- the rate of local (LMDB) logins, alone and while the provider hangs
  and 16 other clients wait on it.

Everything comes from smtpload(1) in this run; the ratios are the result.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))

from daemon import BUILD, Daemon  # noqa: E402
from benchutil import log, smtpload  # noqa: E402
import oauth_server  # noqa: E402
from oauth_server import OAuthServer  # noqa: E402

AUTHCTL = os.path.join(BUILD, "authctl")
DURATION = int(os.environ.get("BENCH_SECONDS", "8"))
DOMAIN = "bench.test"
DELAY_MS = 50
NUSERS = 50


def write_users(path, users):
    with open(path, "w") as f:
        for u, p in users:
            f.write("%s:%s\n" % (u, p))
    os.chmod(path, 0o644)


def daemon(srv, cache, local_import=None):
    d = Daemon(workers=os.cpu_count(), local_domains=[DOMAIN],
               max_sessions=200000, max_sessions_per_address=200000)
    secret = os.path.join(d.dir, "oauth.secret")
    with open(secret, "w") as f:
        f.write(srv.client_secret + "\n")
    os.chmod(secret, 0o600)
    # The cache first: a remote user's cached login then costs no dummy
    # hash in the lmdb checker (which verifies one for unknown users,
    # so that refusing them takes as long as refusing a wrong password).
    text = "auth {\n"
    if cache:
        text += '\tchecker "cache" cache "%s/cache" {\n\t\tttl 1h\n\t}\n' \
            % d.dir
    text += '\tchecker "local" lmdb "%s/db"\n' % d.dir
    text += ('\tchecker "idp" oauth {\n'
             '\t\ttoken-url "%s"\n\t\tclient-id "%s"\n'
             '\t\tclient-secret-file "%s"\n\t\tca-file "%s"\n'
             '\t\tdomain "%s"\n\t\ttimeout 5s\n'
             '\t\tcircuit-breaker off\n\t}\n'
             '\tfailure-delay 0s\n}\n'
             % (srv.token_url, srv.client_id, secret, srv.ca_file, DOMAIN))
    d.conf_extra = text
    d.write_conf()
    if local_import:
        subprocess.run([AUTHCTL, "-f", d.conf, "user", "import",
                        local_import], check=True, capture_output=True)
    d.start()
    return d


def lat(res, key="auth_ms"):
    if not res or key not in res:
        return None, None
    return res[key]["p50"], res[key]["p99"]


def run(workdir=None, local_users=None, local_hashes=None):
    """The rows of the OAuth table: (what, figure, unit)."""
    own = workdir is None
    if own:
        workdir = tempfile.mkdtemp(prefix="portcullis-oauth-bench-")
        os.chmod(workdir, 0o755)
    oauth_server.ensure_node_modules()
    srvdir = os.path.join(workdir, "idp")
    os.makedirs(srvdir, exist_ok=True)
    os.chmod(srvdir, 0o755)
    srv = OAuthServer(srvdir).start()
    os.chmod(srv.ca_file, 0o644)
    rows = []
    daemons = []
    try:
        remote = [("r%d" % i, "rpw-%d" % i) for i in range(NUSERS)]
        for u, p in remote:
            srv.set_user(u, p)
        rfile = os.path.join(workdir, "remote-users.txt")
        write_users(rfile, [("%s@%s" % (u, DOMAIN), p) for u, p in remote])
        srv.mode(delay_ms=DELAY_MS)
        base = ["-m", 0, "--auth", rfile]

        # Uncached: every login is a password grant, 50 ms away.
        d = daemon(srv, cache=False)
        daemons.append(d)
        log("oauth: uncached logins")
        srv.reset_stats()
        res = smtpload(d.port, "-c", 1, "-t", DURATION, *base)
        unc = lat(res)
        asked = srv.count("/pw/token")
        d.stop()
        daemons.remove(d)

        # Cached: the same users, after one login each.
        d = daemon(srv, cache=True)
        daemons.append(d)
        log("oauth: warming the cache")
        smtpload(d.port, "-c", 4, "-n", NUSERS * 4, *base)
        srv.reset_stats()
        log("oauth: cached logins")
        res = smtpload(d.port, "-c", 1, "-t", DURATION, *base)
        cac = lat(res)
        asked_cached = srv.count("/pw/token")
        sessions = res.get("sessions_completed", 0) if res else 0
        d.stop()
        daemons.remove(d)
        rows.append(("login p50, uncached (provider 50 ms away)",
                     unc[0], "ms"))
        rows.append(("login p50, cached", cac[0], "ms"))
        if unc[0] and cac[0]:
            rows.append(("uncached / cached, median", unc[0] / cac[0],
                         "x (target >= 20)"))
        rows.append(("provider requests: uncached run / cached run",
                     "%d / %d (%d cached logins)" % (asked, asked_cached,
                                                     sessions), ""))

        # Local logins while the provider hangs.
        users = local_users or [("l%d@%s" % (i, DOMAIN), "lpw-%d" % i)
                                for i in range(NUSERS)]
        lfile = os.path.join(workdir, "local-users.txt")
        write_users(lfile, users)
        imp = os.path.join(workdir, "local-import.txt")
        with open(imp, "w") as f:
            for u, p in users:
                h = (local_hashes or {}).get(u) or subprocess.run(
                    ["openssl", "passwd", "-6", p], capture_output=True,
                    text=True, check=True).stdout.strip()
                f.write("%s:{SHA512-CRYPT}%s\n" % (u, h))
        d = daemon(srv, cache=True, local_import=imp)
        daemons.append(d)
        srv.mode(delay_ms=0)
        lbase = ["-c", 16, "-t", DURATION, "-m", 0, "--auth", lfile]
        log("oauth: local logins, provider fine")
        normal = smtpload(d.port, *lbase)
        srv.mode(hang=True)
        stop = threading.Event()

        def hammer():
            while not stop.is_set():
                smtpload(d.port, "-c", 16, "-t", 3, *base[:2],
                         "--auth", rfile)
        th = threading.Thread(target=hammer)
        th.start()
        time.sleep(1)
        log("oauth: local logins, provider hung")
        hung = smtpload(d.port, *lbase)
        stop.set()
        srv.mode(hang=False)
        th.join(30)
        rn = normal.get("sessions_per_s") if normal else None
        rh = hung.get("sessions_per_s") if hung else None
        rows.append(("local (LMDB) logins/s, provider fine", rn, "auths/s"))
        rows.append(("local (LMDB) logins/s, provider hung, 16 clients "
                     "waiting on it", rh, "auths/s"))
        if rn and rh:
            rows.append(("hung / fine", rh / rn, "(target >= 0.90)"))
        errs = (normal or {}).get("errors", 0) + (hung or {}).get("errors",
                                                                 0)
        rows.append(("errors in the local runs", errs, ""))
    finally:
        for d in daemons:
            d.stop()
        srv.stop()
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
    return rows


def print_rows(rows):
    import table  # tests/bench, beside this file
    table.print_rows("### OAuth (password grant, provider answering in %d ms)"
                     % DELAY_MS, rows)


if __name__ == "__main__":
    print_rows(run())
