"""
test_fault.py -- faults under load (issue #7, part 5).

smtpload keeps a dozen authenticated sessions sending small messages
while something breaks: a worker or authd is killed with SIGKILL, the
daemon gets a burst of SIGHUPs, the OAuth provider stops answering, the
next hop of a relay goes away.  smtpload's --ack-log tells, for each
message (each carries a Message-ID of its own), which reply decided it
and at which stage.  Afterwards the spool (or the next hop) is compared
with it:

- every message that got 250 was delivered, exactly once;
- no message was delivered that did not get 250, except one whose
  connection was lost after its final dot was sent (the server may have
  delivered and lost only its 250: "unknown", allowed, counted) and,
  for the relay, one refused with a 4xx after its dot at the moment the
  next hop died (the next hop may have stored it and died before its
  250: the classic duplicate window of RFC 1047, counted);
- a client saw 250, a 4xx, or a lost connection: never a 5xx, never a
  2xx where none was due;
- service is back within 2 s: a fresh session sends a message.

Each test prints its figures on standard error.
"""

import base64
import collections
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
import unittest

from daemon import BUILD, Daemon, free_port
from smtp_helpers import HERE, SYSTEM_PYTHON, Session

SMTPLOAD = os.path.join(BUILD, "smtpload")

LOCAL_USERS = [("u%d@example.org" % i, "pw-%d" % i) for i in range(1, 5)]
RECOVERY_MAX = 2.0      # seconds from the fault's end to a fresh session
LOAD_CONC = 12
LOAD_SECONDS = 4

MID_RX = re.compile(rb"^Message-ID: <([^>\r\n]+)>\r?$", re.M | re.I)


def static_auth_block(users=LOCAL_USERS, more=""):
    """An auth { } with a static checker for users; more: other checkers
    after it."""
    text = 'auth {\n\tchecker "local" static {\n'
    for user, password in users:
        text += '\t\tuser "%s" password "%s"\n' % (user, password)
    text += "\t}\n" + more
    text += "\tfailure-delay 0s\n\tmax-auth-failures 100\n}\n"
    return text


def fault_daemon(**kw):
    """A daemon for load: 2 workers, local domain example.org, the
    static users, room for every session from 127.0.0.1."""
    args = dict(workers=2, grace="2s", local_domains=["example.org"],
                max_sessions_per_address=1000,
                conf_extra=static_auth_block())
    args.update(kw)
    return Daemon(**args)


def note(text):
    sys.stderr.write("\n    %s " % text)
    sys.stderr.flush()


# ---------------------------------------------------------------------
# What the client saw.

def read_acks(path):
    """{message id: (code, stage, ms)} from smtpload --ack-log, and the
    ids written twice."""
    acks, twice = {}, []
    with open(path) as f:
        for line in f:
            mid, code, stage, ms = line.split()
            if mid in acks:
                twice.append(mid)
            acks[mid] = (code, stage, float(ms))
    return acks, twice


class Load:
    """smtpload in the background, with --ack-log, for the daemon d."""

    count = 0

    def __init__(self, d, users=LOCAL_USERS, conc=LOAD_CONC,
                 seconds=LOAD_SECONDS, msgs=3, size=1024, timeout=10,
                 port=None):
        Load.count += 1
        tag = "%d.%d" % (os.getpid(), Load.count)
        self.ack = os.path.join(d.dir, "ack.%s" % tag)
        ufile = os.path.join(d.dir, "users.%s" % tag)
        with open(ufile, "w") as f:
            for user, password in users:
                f.write("%s:%s\n" % (user, password))
        args = [SMTPLOAD, "-p", str(port or d.port), "--json",
                "-c", str(conc), "-t", str(seconds), "-m", str(msgs),
                "-s", str(size), "--timeout", str(timeout),
                "--auth", ufile, "--to", "rcpt@example.org",
                "--ack-log", self.ack]
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)

    def wait(self, timeout=60):
        out, err = self.proc.communicate(timeout=timeout)
        try:
            self.result = json.loads(out)
        except ValueError:
            raise AssertionError("smtpload: %r %r" % (out, err))
        self.acks, self.twice = read_acks(self.ack)
        return self.result

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def plain_b64(user, password):
    return base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()


def probe(port, user, password, mid, timeout=2.0, source=None):
    """One fresh session: AUTH PLAIN, one message with Message-ID mid,
    QUIT.  Returns (code, stage) as smtpload's ack log would."""
    stage = "connect"
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                        source_address=source)
    except OSError:
        return "drop", stage
    s = Session(sock)
    try:
        stage = "greeting"
        r = s.reply()
        if not r.startswith("220 "):
            return r[:3], stage
        stage = "ehlo"
        r = s.cmd("EHLO probe.example")
        if not r.startswith("250"):
            return r[:3], stage
        stage = "auth"
        r = s.cmd("AUTH PLAIN " + plain_b64(user, password))
        if not r.startswith("235 "):
            return r[:3], stage
        stage = "mail"
        r = s.cmd("MAIL FROM:<%s>" % user)
        if not r.startswith("250 "):
            return r[:3], stage
        stage = "rcpt"
        r = s.cmd("RCPT TO:<probe@example.org>")
        if not r.startswith("250 "):
            return r[:3], stage
        stage = "data"
        r = s.cmd("DATA")
        if not r.startswith("354 "):
            return r[:3], stage
        stage = "dot"
        s.send(("Message-ID: <%s>\r\nSubject: probe\r\n\r\nprobe\r\n.\r\n"
                % mid).encode())
        r = s.reply()
        try:
            s.cmd("QUIT")
        except (OSError, EOFError):
            pass
        return r[:3], stage
    except (OSError, EOFError):
        return "drop", stage
    finally:
        s.close()


class Prober:
    """Fresh sessions until one gets its message through; every message
    it tried is recorded like smtpload's."""

    count = 0

    def __init__(self, port, user, password):
        self.port, self.user, self.password = port, user, password
        self.acks = {}

    def until_ok(self, since, limit=10.0, pause=0.02, source=None):
        """Seconds from since (monotonic) to the first message accepted;
        fails after limit seconds."""
        while True:
            Prober.count += 1
            mid = "probe.%d.%d@fault.test" % (os.getpid(), Prober.count)
            code, stage = probe(self.port, self.user, self.password, mid,
                                source=source)
            if stage in ("mail", "rcpt", "data", "dot"):
                self.acks[mid] = (code, stage, 0.0)
            if code == "250" and stage == "dot":
                return time.monotonic() - since
            if time.monotonic() - since > limit:
                raise AssertionError("no fresh session got through within "
                                     "%.1fs: last %s at %s"
                                     % (limit, code, stage))
            time.sleep(pause)


# ---------------------------------------------------------------------
# What was delivered.

def message_ids(data):
    """The Message-IDs in the header of a message (bytes)."""
    end = data.find(b"\r\n\r\n")
    head = data if end == -1 else data[:end + 2]
    return [m.decode() for m in MID_RX.findall(head)]


def spool_ids(d):
    """Counter of the Message-IDs in spool/new; files without one."""
    got = collections.Counter()
    anonymous = []
    for name in d.spooled():
        ids = message_ids(d.spool_file(name))
        if len(ids) != 1:
            anonymous.append(name)
        got.update(ids)
    return got, anonymous


def fate_ok(code, stage):
    """250 after the dot, a 4xx anywhere, a lost connection."""
    if code == "250":
        return stage == "dot"
    if re.match(r"^4\d\d$", code):
        return True
    return code in ("drop", "timeout")


class FaultCase(unittest.TestCase):
    """Bookkeeping shared by the fault tests."""

    def setUp(self):
        self.daemons = []
        self.loads = []

    def tearDown(self):
        for load in self.loads:
            load.kill()
        for d in self.daemons:
            d.stop()

    def start(self, d):
        self.daemons.append(d)
        d.start()
        return d

    def load(self, d, **kw):
        load = Load(d, **kw)
        self.loads.append(load)
        return load

    def check_load_result(self, res, allow_timeouts=False):
        """Only 4xx error replies, nothing unexpected or malformed."""
        codes = res["error_replies"]
        self.assertTrue(all(c.startswith("4") for c in codes),
                        "a client saw a reply other than 4xx: %r" % res)
        self.assertEqual(res["unexpected_replies"], 0, res)
        self.assertEqual(res["malformed_replies"], 0, res)
        self.assertEqual(res["tls_errors"], 0, res)
        if not allow_timeouts:
            self.assertEqual(res["timeouts"], 0, res)

    def account(self, acks, delivered, anonymous=(), twice=(),
                hop_window=None):
        """Compare what the clients saw with what was delivered; return
        the figures."""
        self.assertEqual(list(twice), [], "ids written twice in the ack log")
        self.assertEqual(list(anonymous), [],
                         "delivered without one Message-ID")
        wrong = {m: a for m, a in acks.items() if not fate_ok(a[0], a[1])}
        self.assertEqual(wrong, {}, "clients saw a 5xx or a wrong reply")
        acked = {m for m, a in acks.items() if a[0] == "250"}
        unknown = {m for m, a in acks.items()
                   if a[0] in ("drop", "timeout") and a[1] == "dot"}
        dup = {m: n for m, n in delivered.items() if n > 1}
        self.assertEqual(dup, {}, "delivered more than once")
        missing = acked - set(delivered)
        self.assertEqual(missing, set(), "got 250 but not delivered")
        extra = set(delivered) - acked - unknown
        window = set()
        if hop_window is not None:
            window = {m for m in extra if m in acks and
                      acks[m][0].startswith("4") and acks[m][1] == "dot" and
                      hop_window(acks[m])}
            extra -= window
        self.assertEqual({m: acks.get(m) for m in extra}, {},
                         "delivered without a 250")
        interrupted = sum(1 for a in acks.values() if a[0] != "250")
        return {
            "messages": len(acks),
            "acked": len(acked),
            "delivered": sum(delivered.values()),
            "interrupted": interrupted,
            "unknown": len(unknown),
            "unknown_delivered": len(unknown & set(delivered)),
            "hop_window": len(window),
        }


# ---------------------------------------------------------------------

class TestFaultsSpool(FaultCase):
    """kill -9 of a worker, kill -9 of authd, a burst of SIGHUPs."""

    def run_fault(self, name, fault, d=None, settle=1.0):
        """Load, fault() at settle seconds (returns the monotonic time
        the fault ended), a fresh session, the accounting."""
        d = d or self.start(fault_daemon())
        prober = Prober(d.port, *LOCAL_USERS[0])
        load = self.load(d)
        time.sleep(settle)
        t_fault = fault(d)
        recovery = prober.until_ok(t_fault)
        res = load.wait()
        self.check_load_result(res)
        acks = dict(load.acks)
        acks.update(prober.acks)
        delivered, anonymous = spool_ids(d)
        fig = self.account(acks, delivered, anonymous, load.twice)
        fig["recovery_ms"] = round(recovery * 1000)
        fig["errors"] = res["error_replies"]
        fig["conn_errors"] = res["connection_errors"]
        fig["tmp_left"] = len(d.spooled("tmp"))
        note("%s: %s" % (name, fig))
        self.assertLess(recovery, RECOVERY_MAX, fig)
        self.assertGreater(fig["acked"], 0, fig)
        return d, fig

    def busiest_worker(self, d):
        """The worker that opened the most sessions so far."""
        pids = d.pids("worker")
        log = d.log()
        return max(pids, key=lambda p: len(re.findall(
            r"worker\[%d\]: session \S+: connection from" % p, log)))

    def test_kill_worker(self):
        killed = []

        def fault(d):
            pid = self.busiest_worker(d)
            killed.append(pid)
            os.kill(pid, signal.SIGKILL)
            return time.monotonic()

        d, fig = self.run_fault("kill -9 worker", fault)
        # Sessions of that worker were cut; the worker came back.
        self.assertGreater(fig["interrupted"] + fig["conn_errors"], 0, fig)
        t0 = time.monotonic()
        d.wait_pids("worker", 2, exclude=killed)
        self.assertRegex(d.log(), r"worker \d \(pid %d\) killed by signal 9"
                         % killed[0])
        note("worker replaced within %.0f ms of the check"
             % ((time.monotonic() - t0) * 1000))

    def test_kill_authd(self):
        killed = []

        def fault(d):
            (pid,) = d.pids("authd")
            killed.append(pid)
            os.kill(pid, signal.SIGKILL)
            return time.monotonic()

        d, fig = self.run_fault("kill -9 authd", fault)
        d.wait_pids("authd", 1, exclude=killed)
        self.assertRegex(d.log(), r"authd \(pid %d\) killed by signal 9"
                         % killed[0])
        # Nobody was refused for good while authd was away.
        self.assertNotIn("535", fig["errors"])

    def test_sighup_burst(self):
        def fault(d):
            for _ in range(10):
                d.proc.send_signal(signal.SIGHUP)
                time.sleep(0.09)
            return time.monotonic()

        d, fig = self.run_fault("10 SIGHUPs in 0.9 s", fault)
        # A new worker takes connections only once authd answered it:
        # no AUTH meets a worker without its channel (454).
        self.assertEqual(fig["errors"], {}, fig)
        # A SIGHUP that arrives while one is pending merges with it
        # (POSIX): under load fewer than 10 reloads may be asked for.
        # Each one asked for is done.
        log = d.log()
        asked = len(re.findall(r"master\[\d+\]: reloading ", log))
        done = [int(g) for g in re.findall(
            r"master\[\d+\]: configuration reloaded, generation (\d+)", log)]
        note("%d reloads" % asked)
        self.assertEqual(done, list(range(1, asked + 1)))
        self.assertGreaterEqual(asked, 5)
        # The old generations drain within the grace period (2s).
        deadline = time.monotonic() + 8
        while len(d.pids("worker")) > 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(len(d.pids("worker")), 2, d.children())
        self.assertNotRegex(d.log(), r"killed by signal|exited with status")


# ---------------------------------------------------------------------

class TestFaultOAuthHang(FaultCase):
    """The OAuth provider hangs: its users get 454 after the checker's
    time-out, local users go on as if nothing happened."""

    @classmethod
    def setUpClass(cls):
        import oauth_server
        if not oauth_server.have_node():
            raise unittest.SkipTest("node is not installed")
        oauth_server.ensure_node_modules()
        import tempfile
        cls.srv_dir = tempfile.mkdtemp(prefix="oauth-fault-")
        os.chmod(cls.srv_dir, 0o755)
        cls.srv = oauth_server.OAuthServer(cls.srv_dir)
        cls.srv.start()
        os.chmod(cls.srv.ca_file, 0o644)

    @classmethod
    def tearDownClass(cls):
        import shutil
        cls.srv.mode(delay_ms=0, hang=False)
        cls.srv.stop()
        shutil.rmtree(cls.srv_dir, ignore_errors=True)

    def oauth_checker(self, d):
        secret = os.path.join(d.dir, "oauth.secret")
        with open(secret, "w") as f:
            f.write(self.srv.client_secret + "\n")
        os.chmod(secret, 0o600)
        return ('\tchecker "corp" oauth {\n'
                '\t\ttoken-url "%s/pw/token"\n'
                '\t\tclient-id "%s"\n'
                '\t\tclient-secret-file "%s"\n'
                '\t\tca-file "%s"\n'
                '\t\tdomain "example.org"\n'
                '\t\ttimeout 2s\n'
                '\t\tconnect-timeout 1s\n'
                '\t} mechanisms PLAIN LOGIN\n'
                % (self.srv.base_url, self.srv.client_id, secret,
                   self.srv.ca_file))

    def test_hung_provider(self):
        oauth_users = [("o%d@example.org" % i, "opw-%d" % i)
                       for i in range(1, 4)]
        for user, password in oauth_users:
            self.srv.set_user(user.split("@")[0], password)
        d = fault_daemon()
        d.conf_extra = static_auth_block(more=self.oauth_checker(d))
        d.write_conf()
        self.start(d)
        self.srv.mode(delay_ms=0, hang=False)
        local = self.load(d, conc=8, seconds=5)
        remote = self.load(d, users=oauth_users, conc=4, seconds=5)
        local_probe = Prober(d.port, *LOCAL_USERS[1])
        remote_probe = Prober(d.port, *oauth_users[0])
        time.sleep(1.0)
        since = d.log_offset()
        self.srv.mode(hang=True)
        t_hang = time.monotonic()
        # While it hangs a local user logs in and sends as usual.
        local_during = local_probe.until_ok(time.monotonic())
        time.sleep(2.5)          # past the checker's 2s time-out
        self.srv.mode(hang=False)
        t_back = time.monotonic()
        recovery = remote_probe.until_ok(t_back)
        lres = local.wait()
        rres = remote.wait()
        self.check_load_result(lres)
        self.check_load_result(rres)
        # Local users never noticed: no error, logins stay quick.
        self.assertEqual(lres["errors"], 0, lres)
        self.assertLess(lres["auth_ms"]["max"], 1000, lres)
        # The provider's users got 454 while it hung, nothing else.
        self.assertEqual(set(rres["error_replies"]), {"454"}, rres)
        log = d.log()[since:]
        self.assertRegex(log, r"auth result=tempfail")
        acks = dict(local.acks)
        acks.update(remote.acks)
        for p in (local_probe, remote_probe):
            acks.update(p.acks)
        delivered, anonymous = spool_ids(d)
        fig = self.account(acks, delivered, anonymous,
                           local.twice + remote.twice)
        fig.update(local_auth_ms=lres["auth_ms"],
                   remote_454=rres["error_replies"]["454"],
                   remote_messages=rres["messages"],
                   local_probe_during_hang_ms=round(local_during * 1000),
                   recovery_ms=round(recovery * 1000),
                   hang_s=round(t_back - t_hang, 1))
        note("hung OAuth provider: %s" % fig)
        self.assertLess(local_during, 1.0, fig)
        self.assertLess(recovery, RECOVERY_MAX, fig)
        self.assertGreater(rres["messages"], 0, rres)


# ---------------------------------------------------------------------

class HopProcess:
    """The aiosmtpd next hop of smtp_helpers.py on a fixed port, so that
    it can be killed and started again where the relay expects it; each
    start records into its own directory."""

    def __init__(self, port, base):
        self.port, self.base = port, base
        self.dirs = []
        self.proc = None

    def start(self):
        d = os.path.join(self.base, "hop%d" % len(self.dirs))
        os.mkdir(d)
        self.dirs.append(d)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("PYTHON")}
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, os.path.join(HERE, "smtp_helpers.py"), "nexthop",
             "--port", str(self.port), "--dir", d],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        r, _, _ = select.select([self.proc.stdout], [], [], 15)
        line = self.proc.stdout.readline() if r else b""
        if line.strip() != b"READY":
            raise AssertionError("next hop did not start: %r" % line)
        return time.monotonic()

    def stop(self, sig):
        self.proc.send_signal(sig)
        t = time.monotonic()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.proc = None
        return t

    def ids(self):
        got = collections.Counter()
        anonymous = []
        for d in self.dirs:
            for name in sorted(os.listdir(d)):
                if not name.endswith(".json"):
                    continue
                with open(os.path.join(d, name)) as f:
                    content = json.load(f)["content"].encode("latin-1")
                ids = message_ids(content)
                if len(ids) != 1:
                    anonymous.append(name)
                got.update(ids)
        return got, anonymous

    def close(self):
        if self.proc is not None:
            self.stop(signal.SIGKILL)


class TestFaultRelay(FaultCase):
    def test_next_hop_goes_away(self):
        port = free_port()
        d = fault_daemon(deliver='relay "smtp://127.0.0.1:%d"' % port)
        self.daemons.append(d)
        hop = HopProcess(port, d.dir)
        self.addCleanup(hop.close)
        hop.start()
        d.start()
        prober = Prober(d.port, *LOCAL_USERS[0])
        load = self.load(d, seconds=5)
        deaths = []
        time.sleep(1.0)
        deaths.append(hop.stop(signal.SIGKILL))       # killed
        time.sleep(0.5)
        hop.start()
        time.sleep(1.0)
        deaths.append(hop.stop(signal.SIGTERM))       # stopped
        time.sleep(0.5)
        t_back = hop.start()
        recovery = prober.until_ok(t_back)
        res = load.wait()
        self.check_load_result(res)
        acks = dict(load.acks)
        acks.update(prober.acks)
        delivered, anonymous = hop.ids()

        def near_a_death(ack):
            t = load.t0 + ack[2] / 1000.0
            return any(abs(t - dt) < 1.0 for dt in deaths)

        fig = self.account(acks, delivered, anonymous, load.twice,
                           hop_window=near_a_death)
        fig["recovery_ms"] = round(recovery * 1000)
        fig["errors"] = res["error_replies"]
        note("next hop killed and stopped: %s" % fig)
        self.assertLess(recovery, RECOVERY_MAX, fig)
        self.assertIn("451", res["error_replies"], res)
        self.assertEqual(d.spooled(), [])


if __name__ == "__main__":
    unittest.main()
