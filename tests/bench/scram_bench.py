"""
scram_bench.py -- SCRAM-SHA-256 and app passwords in make bench (also
runs alone: python3 tests/bench/scram_bench.py, after make).

Three login rates against one portcullisd with an lmdb store, each a
whole session (connect, EHLO, AUTH, QUIT) on loopback without TLS, so
that the figures differ only by the credential:

- AUTH PLAIN with the account's password, a sha512-crypt hash (5000
  rounds);
- AUTH SCRAM-SHA-256: the server's side is two HMACs and a hash, the
  client's PBKDF2 is done once per user and kept, as RFC 5802 5.1
  lets a client do (otherwise the load generator, not the server,
  would be measured);
- AUTH PLAIN with an app password (an HMAC verifier).

The load generator is Python (smtpload has no SCRAM), the same code
path for the three, NPROC processes.  The ratios are the result.
"""

import base64
import hashlib
import hmac
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))

from daemon import BUILD, Daemon  # noqa: E402
from benchutil import log  # noqa: E402

AUTHCTL = os.path.join(BUILD, "authctl")
DURATION = int(os.environ.get("BENCH_SECONDS", "8"))
NUSERS = 20
NPROC = 4


def reply(f):
    """The last line of one SMTP reply."""
    while True:
        line = f.readline()
        if not line:
            raise EOFError
        if line[3:4] != b"-":
            return line


def session(port, user, password, mech, keys):
    with socket.create_connection(("127.0.0.1", port)) as s:
        f = s.makefile("rb")
        reply(f)
        s.sendall(b"EHLO bench\r\n")
        reply(f)
        if mech == "PLAIN":
            ir = base64.b64encode(b"\0%s\0%s" % (user.encode(),
                                                 password.encode()))
            s.sendall(b"AUTH PLAIN " + ir + b"\r\n")
            ok = reply(f).startswith(b"235")
        else:
            ok = scram(s, f, user, password, keys)
        s.sendall(b"QUIT\r\n")
        reply(f)
    return ok


def scram(s, f, user, password, keys):
    cnonce = base64.b64encode(os.urandom(18)).decode()
    bare = "n=%s,r=%s" % (user, cnonce)
    s.sendall(b"AUTH SCRAM-SHA-256 " + base64.b64encode(
        ("n,," + bare).encode()) + b"\r\n")
    r = reply(f)
    if not r.startswith(b"334 "):
        return False
    sfirst = base64.b64decode(r[4:].strip()).decode()
    a = dict(x.split("=", 1) for x in sfirst.split(","))
    k = (user, a["s"], a["i"])
    if k not in keys:
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(),
                                     base64.b64decode(a["s"]), int(a["i"]))
        ckey = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        keys[k] = (ckey, hashlib.sha256(ckey).digest())
    ckey, stored = keys[k]
    without = "c=biws,r=" + a["r"]
    am = ",".join([bare, sfirst, without]).encode()
    sig = hmac.new(stored, am, hashlib.sha256).digest()
    proof = bytes(x ^ y for x, y in zip(ckey, sig))
    s.sendall(base64.b64encode((without + ",p=" + base64.b64encode(
        proof).decode()).encode()) + b"\r\n")
    if not reply(f).startswith(b"334 "):
        return False
    s.sendall(b"\r\n")
    return reply(f).startswith(b"235")


def worker(args):
    port, creds, mech, seconds = args
    keys, n, bad, i = {}, 0, 0, 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        user, pw = creds[i % len(creds)]
        i += 1
        if session(port, user, pw, mech, keys):
            n += 1
        else:
            bad += 1
    return n, bad


def rate(port, creds, mech, seconds):
    # Each process derives a user's keys at its first login, once.
    with multiprocessing.Pool(NPROC) as pool:
        res = pool.map(worker, [(port, creds, mech, seconds)] * NPROC)
    n = sum(r[0] for r in res)
    bad = sum(r[1] for r in res)
    if bad:
        # A rate with failed logins in it measures nothing: n/a.
        log("scram: %s: %d logins failed" % (mech, bad))
        return None
    return n / seconds


def setup(workdir):
    d = Daemon(workers=os.cpu_count(), max_sessions=200000,
               max_sessions_per_address=200000)
    # SCRAM is offered only where a checker's mechanisms name it.
    d.conf_extra = ('auth {\n\tchecker "local" lmdb "%s/db" mechanisms '
                    "PLAIN LOGIN SCRAM-SHA-256\n"
                    "\tfailure-delay 0s\n}\n" % d.dir)
    d.write_conf()
    users, apps = [], []
    for i in range(NUSERS):
        u, p = "s%d" % i, "spw-%d" % i
        subprocess.run([AUTHCTL, "-f", d.conf, "user", "add", "-s", "sha512",
                        "--password-stdin", u], input=p + "\n", text=True,
                       check=True, capture_output=True)
        a = subprocess.run([AUTHCTL, "-f", d.conf, "app-password", "add",
                            u, "bench"], text=True, check=True,
                           capture_output=True).stdout.strip()
        users.append((u, p))
        apps.append((u, a))
    d.start()
    return d, users, apps


def run(workdir=None):
    """The rows of the SCRAM table: (what, figure, unit)."""
    d, users, apps = setup(workdir)
    try:
        log("scram: PLAIN with sha512-crypt")
        plain = rate(d.port, users, "PLAIN", DURATION)
        log("scram: SCRAM-SHA-256")
        scram_r = rate(d.port, users, "SCRAM-SHA-256", DURATION)
        log("scram: PLAIN with an app password")
        app = rate(d.port, apps, "PLAIN", DURATION)
    finally:
        d.stop()
    return [
        ("PLAIN, sha512-crypt (5000 rounds), logins/s", plain, "/s"),
        ("SCRAM-SHA-256 (4096 iterations, client keys cached), logins/s",
         scram_r, "/s"),
        ("PLAIN, app password (HMAC-SHA-256), logins/s", app, "/s"),
        ("SCRAM / PLAIN sha512-crypt", scram_r / plain if plain and scram_r
         else None, "ratio"),
        ("app password / PLAIN sha512-crypt", app / plain if plain and app
         else None, "ratio"),
    ]


def main():
    for what, v, unit in run():
        print("%-64s %10s %s" % (what, "n/a" if v is None else
                                 "%.2f" % v, unit))


if __name__ == "__main__":
    main()
