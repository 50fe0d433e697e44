"""
test_sandbox.py -- the sandboxes, core dumps and descriptor limits of a
real portcullisd (common/sandbox.c).

What the kernel says about each process is read from /proc: the seccomp
mode, no_new_privs, the limits, and whether the process is dumpable (the
kernel gives the /proc files of a process that is not to root).  That a
filter really kills is shown the honest way: gdb attaches to a running
process and makes it call something its role does not do, and the
process must die of SIGSYS, be logged by master and be replaced.  The
rest of the integration suite runs with the sandboxes on, so every real
path (TLS, AUTH, OAuth, relay, reload, authctl) is exercised under them.
"""

import os
import resource
import shutil
import signal
import smtplib
import socket
import subprocess
import time
import unittest

from daemon import (IS_ROOT, PORTCULLISD, Daemon, base_env, greet_and_quit,
                    read_reply)

GDB = shutil.which("gdb")
SIGSYS = 31


def status(pid):
    """The fields of /proc/PID/status as a dict of strings."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def limits(pid, name):
    """(soft, hard) of one line of /proc/PID/limits, as ints or None."""
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith(name):
                soft, hard = line[len(name):].split()[:2]
                return tuple(None if v == "unlimited" else int(v)
                             for v in (soft, hard))
    raise AssertionError("no %r in /proc/%d/limits" % (name, pid))


def nr_open():
    with open("/proc/sys/fs/nr_open") as f:
        return int(f.read())


def can_raise_hard_limits():
    """Root with CAP_SYS_RESOURCE (some containers take it away)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return IS_ROOT and bool(int(line.split()[1], 16) >> 24 & 1)
    return False


def expected_nofile(need):
    """The hard limit a worker should end up with: what it inherits
    from us through master, raised towards need where root may."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard >= need or not can_raise_hard_limits():
        return hard
    return max(hard, min(need, nr_open()))


def no_core():
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def gdb_call(pid, expr, cwd):
    """Make pid call expr from where it stands, as gdb -batch does.

    When the call is fatal gdb 13 sometimes trips over its own
    assertions (a threaded inferior that vanished); the verdict is
    master's log, never gdb's output, and gdb must not dump core."""
    p = subprocess.run([GDB, "-nx", "-batch",
                        "-iex", "maint set internal-error corefile no",
                        "-iex", "maint set internal-error quit yes",
                        "-p", str(pid), "-ex", "call %s" % expr],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=60, cwd=cwd, preexec_fn=no_core)
    return p.stdout + p.stderr


def resolves_to_loopback(name):
    try:
        infos = socket.getaddrinfo(name, None, socket.AF_INET)
    except socket.gaierror:
        return False
    return all(i[4][0].startswith("127.") for i in infos)


class SandboxCase(unittest.TestCase):
    workers = 1
    settings = {}

    def setUp(self):
        self.d = Daemon(workers=self.workers, **self.settings).start()

    def tearDown(self):
        self.d.stop()

    def family(self):
        """[(role, pid)] of master, authd, the key process and the
        workers."""
        return ([("master", self.d.proc.pid)] +
                [("authd", p) for p in self.d.pids("authd")] +
                [("keys", p) for p in self.d.pids("keys")] +
                [("worker", p) for p in self.d.pids("worker")])


class TestConfinement(SandboxCase):
    workers = 2

    def test_every_process_is_filtered(self):
        for role, pid in self.family():
            st = status(pid)
            self.assertEqual(st["Seccomp"], "2", role)
            self.assertEqual(st["NoNewPrivs"], "1", role)
            # Children: master's deny-list, inherited, and their own.
            self.assertEqual(st["Seccomp_filters"],
                             "1" if role == "master" else "2", role)

    def test_no_core_dumps(self):
        for role, pid in self.family():
            self.assertEqual(limits(pid, "Max core file size"), (0, 0),
                             role)

    @unittest.skipUnless(IS_ROOT, "the children run as root's users")
    def test_children_not_dumpable(self):
        # A dumpable process owns its /proc/PID/fd; one that is not
        # leaves it to root, whatever its uid.
        for role, pid in self.family()[1:]:
            self.assertNotEqual(int(status(pid)["Uid"].split()[0]), 0)
            st = os.stat("/proc/%d/fd" % pid)
            self.assertEqual((st.st_uid, st.st_gid), (0, 0), role)


class TestDescriptorLimit(SandboxCase):
    """max-sessions 20000 needs 40064 descriptors."""
    settings = {"max_sessions": 20000}
    need = 20000 * 2 + 64

    def test_worker_limit_fits_max_sessions(self):
        (pid,) = self.d.pids("worker")
        want = expected_nofile(self.need)
        self.assertEqual(limits(pid, "Max open files"), (want, want))
        if want >= self.need:
            self.assertNotIn("descriptors allowed", self.d.log())
        else:
            self.d.wait_log(r"worker 0: only %d descriptors allowed, "
                            r"max-sessions %d needs %d"
                            % (want, self.settings["max_sessions"],
                               self.need))
        greeting, _ = greet_and_quit(self.d)
        self.assertTrue(greeting.startswith("220 "))


class TestDescriptorLimitShort(TestDescriptorLimit):
    """Two million descriptors: more than fs.nr_open allows, so the
    worker says so however much root raised the limit."""
    settings = {"max_sessions": 1000000}
    need = 1000000 * 2 + 64


@unittest.skipUnless(GDB and IS_ROOT, "needs gdb, and root to attach")
class TestViolations(SandboxCase):
    def killed(self, role, pid, mark):
        self.d.wait_log(r"%s \(pid %d\) killed by the sandbox \(SIGSYS\)"
                        % (role, pid), since=mark, timeout=2.0)

    def test_worker_that_forks_is_killed_and_replaced(self):
        (victim,) = self.d.pids("worker")
        mark = self.d.log_offset()
        gdb_call(victim, "(int)fork()", self.d.dir)
        t0 = time.monotonic()
        self.killed("worker 0", victim, mark)
        # A new worker serves a session within 2 s.
        while True:
            try:
                greeting, bye = greet_and_quit(self.d)
                break
            except OSError:
                if time.monotonic() - t0 > 2.0:
                    raise
                time.sleep(0.05)
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assertTrue(greeting.startswith("220 "))
        self.assertEqual(bye, "221 2.0.0 Bye\r\n")
        self.assertNotIn(victim, self.d.pids("worker"))

    def test_spool_worker_has_no_inet_socket(self):
        # A relay worker may connect out; a spool worker may not.
        (victim,) = self.d.pids("worker")
        mark = self.d.log_offset()
        gdb_call(victim, "(int)socket(2, 1, 0)", self.d.dir)
        self.killed("worker 0", victim, mark)

    def test_key_process_opens_no_file(self):
        (victim,) = self.d.pids("keys")
        mark = self.d.log_offset()
        # Under a sanitizer open() is allowed (its reports read
        # files); accept(), which the key process never needs, is not.
        call = ('(int)accept(0, 0, 0)' if sanitized() else
                '(int)open("/etc/passwd", 0)')
        gdb_call(victim, call, self.d.dir)
        self.killed(r"keys \d+", victim, mark)
        # Replaced within 2 s, with the keys read again by master.
        self.d.wait_pids("keys", 1, exclude=[victim], timeout=2.0)
        self.d.wait_log(r"keys \d+ ready", since=mark, timeout=2.0)

    def test_authd_runs_threads_but_not_processes(self):
        (victim,) = self.d.pids("authd")
        mark = self.d.log_offset()
        gdb_call(victim, "(int)fork()", self.d.dir)
        self.killed("authd", victim, mark)
        # Replaced, and the worker has a channel to the new one.
        self.d.wait_pids("authd", 1, exclude=[victim], timeout=2.0)
        self.d.wait_log(r"worker 0: authd ping ok", since=mark,
                        timeout=2.0)

    def test_master_deny_list(self):
        # Harmless if it ran (EFAULT); the deny-list makes it fatal.
        gdb_call(self.d.proc.pid, "(int)mount(0, 0, 0, 0, 0)", self.d.dir)
        self.assertEqual(self.d.proc.wait(timeout=10), -SIGSYS)


def sanitized():
    """Whether the build under test runs under AddressSanitizer."""
    with open(os.path.join(os.path.dirname(PORTCULLISD),
                           "portcullis-worker"), "rb") as f:
        return b"__asan_init" in f.read()


@unittest.skipUnless(sanitized(), "optional: only in a SANITIZE=1 build")
@unittest.skipUnless(GDB and IS_ROOT, "needs gdb, and root to attach")
class TestSanitizerReports(SandboxCase):
    """A sanitizer's report must come out whole under the filters: cut
    short by SIGSYS, a memory error would pass for a sandbox violation
    (and once did, hiding a use-after-free in authd)."""

    def tearDown(self):
        try:
            self.d.stop()
        except AssertionError as e:
            if "sanitizer report" not in str(e):
                raise

    def test_reports_survive_the_filters(self):
        for n, role in enumerate(("worker", "authd"), 1):
            (pid,) = self.d.pids(role)
            gdb_call(pid, "(void)__asan_report_load1(8)", self.d.dir)
            self.d.wait_log(r"SUMMARY: AddressSanitizer", count=n)
            self.d.wait_log(r"\(pid %d\) exited with status" % pid)
        self.assertNotIn("killed by the sandbox", self.d.log())


class TestSyslogMode(unittest.TestCase):
    """Without -d every line goes to syslog(3).  Where /dev/log cannot
    be reached (never, from the chroot), glibc tries to reconnect before
    each line with socket(AF_UNIX): the worker's filter makes that fail
    instead of killing the worker at its first log line."""

    def setUp(self):
        self.d = Daemon(workers=1)
        self.master = None

    def tearDown(self):
        master = self.master or self.find_master()
        if master is not None:
            os.kill(master, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while (os.path.exists("/proc/%d" % master) and
                   time.monotonic() < deadline):
                time.sleep(0.05)
        for pid in self.workers(None):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.d.dir, ignore_errors=True)

    def workers(self, role="worker"):
        """The processes of role chrooted to this daemon's directory
        (the key process is chrooted there too)."""
        pids = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    if os.readlink("/proc/%s/root" % d) != self.d.chroot:
                        continue
                    with open("/proc/%s/cmdline" % d, "rb") as f:
                        title = f.read().replace(b"\0", b" ").decode()
                    if role is None or title.startswith(
                            "portcullis: " + role):
                        pids.append(int(d))
                except OSError:
                    pass
        return pids

    def find_master(self):
        """The portcullisd that holds this daemon's control socket."""
        path = os.path.join(self.d.dir, "control.sock")
        with open("/proc/net/unix") as f:
            inodes = {line.split()[6] for line in f
                      if line.rstrip().endswith(" " + path)}
        for d in os.listdir("/proc"):
            try:
                if (not d.isdigit() or os.path.basename(os.readlink(
                        "/proc/%s/exe" % d)) != "portcullisd"):
                    continue
                for fd in os.listdir("/proc/%s/fd" % d):
                    link = os.readlink("/proc/%s/fd/%s" % (d, fd))
                    if link[len("socket:["):-1] in inodes:
                        return int(d)
            except OSError:
                continue
        return None

    def session(self):
        s = self.d.connect()
        try:
            self.assertTrue(read_reply(s).startswith("220 "))
            s.sendall(b"EHLO client.example\r\nNOOP\r\nQUIT\r\n")
            text = ""
            while "221 " not in text:
                chunk = read_reply(s)
                if not chunk:
                    break
                text += chunk
            self.assertIn("221 2.0.0 Bye", text)
        finally:
            s.close()

    @unittest.skipUnless(IS_ROOT, "the worker is chrooted only as root")
    def test_worker_logs_without_syslog(self):
        subprocess.run([PORTCULLISD, "-f", self.d.conf], env=base_env(),
                       check=True, timeout=30, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.master = self.find_master()
        self.assertIsNotNone(self.master)
        deadline = time.monotonic() + 10
        while True:
            try:
                greet_and_quit(self.d)
                break
            except OSError:
                pass
            self.assertLess(time.monotonic(), deadline, "no worker")
            time.sleep(0.05)
        (worker,) = self.workers()
        self.assertEqual(status(worker)["Seccomp"], "2")
        for _ in range(5):
            self.session()
        self.assertEqual(self.workers(), [worker])


class TestAuthdReload(unittest.TestCase):
    """authd opens its stores at its first configuration, before its
    filter; a reload that adds a store, a cache and its key opens them
    under the filter."""

    def setUp(self):
        self.d = Daemon(workers=1, local_domains=["example.org"])
        self.d.conf_extra = self.auth_block(reloaded=False)
        self.d.write_conf()
        self.d.start()

    def tearDown(self):
        self.d.stop()

    def auth_block(self, reloaded):
        text = ('auth {\n\tchecker "local" lmdb "%s/db"\n' % self.d.dir)
        if reloaded:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            text += ('\tchecker "second" lmdb "%s/db2"\n'
                     '\tchecker "cache" cache "%s/cache" { }\n'
                     '\tchecker "corp" oauth {\n'
                     '\t\ttoken-url "https://127.0.0.1:%d/token"\n'
                     '\t\tclient-id "portcullis"\n\t}\n'
                     % (self.d.dir, self.d.dir, port))
        return text + '\tfailure-delay 0s\n}\n'

    def test_reload_opens_new_stores(self):
        (authd,) = self.d.pids("authd")
        self.d.conf_extra = self.auth_block(reloaded=True)
        self.d.write_conf()
        authctl = os.path.join(os.path.dirname(PORTCULLISD), "authctl")
        subprocess.run([authctl, "-f", self.d.conf, "-d",
                        os.path.join(self.d.dir, "db2"), "user", "add",
                        "--password-stdin", "b@example.org"],
                       input=b"secret\n", env=base_env(), check=True,
                       capture_output=True, timeout=60)
        mark = self.d.log_offset()
        self.d.proc.send_signal(signal.SIGHUP)
        self.d.wait_log(r"authd\[\d+\]: configuration reloaded",
                        since=mark)
        self.d.wait_log(r"cache cache: new key in ", since=mark)
        self.d.wait_log(r"worker 0: authd ping ok", since=mark)
        s = smtplib.SMTP("127.0.0.1", self.d.port, timeout=20)
        try:
            s.ehlo("client.example")
            code, _ = s.login("b@example.org", "secret")
        finally:
            s.close()
        self.assertEqual(code, 235)
        self.assertEqual(self.d.pids("authd"), [authd])
        self.assertNotIn("killed by", self.d.log())


class TestAuthdResolver(SandboxCase):
    """libcurl's resolver threads and getaddrinfo(3) under authd's
    filter: /etc/hosts, then DNS over UDP; the test suite's providers
    are numeric, so this is the only place a name is looked up."""

    def oauth_conf(self, host, port):
        secret = os.path.join(self.d.dir, "oauth.secret")
        with open(secret, "w") as f:
            f.write("not-a-secret\n")
        os.chmod(secret, 0o600)
        return ('auth {\n'
                '\tchecker "corp" oauth {\n'
                '\t\ttoken-url "https://%s:%d/token"\n'
                '\t\tclient-id "portcullis"\n'
                '\t\tclient-secret-file "%s"\n'
                '\t\ttimeout 3s\n'
                '\t\tconnect-timeout 2s\n'
                '\t}\n'
                '\tfailure-delay 0s\n'
                '}\n' % (host, port, secret))

    def setUp(self):
        self.d = Daemon(workers=1, local_domains=["example.org"])

    def login(self, host):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]     # closed: nobody listens
        self.d.conf_extra = self.oauth_conf(host, port)
        self.d.write_conf()
        self.d.start()
        (authd,) = self.d.pids("authd")
        s = smtplib.SMTP("127.0.0.1", self.d.port, timeout=20)
        try:
            s.ehlo("client.example")
            try:
                s.login("a@example.org", "secret")
                code = 235
            except smtplib.SMTPAuthenticationError as e:
                code = e.smtp_code
        finally:
            s.close()
        self.assertEqual(code, 454)         # tempfail: nobody answered
        self.assertEqual(self.d.pids("authd"), [authd])
        self.assertNotIn("killed by", self.d.log())

    def test_name_from_hosts_file(self):
        # curl answers "localhost" itself; this name goes to glibc.
        name = socket.gethostname()
        if not resolves_to_loopback(name):
            self.skipTest("optional: %s does not resolve to 127.0.0.0/8"
                          % name)
        self.login(name)
        self.assertRegex(self.d.log(), r"Failed to connect|refused|"
                         r"Couldn't connect")

    def test_name_from_dns(self):
        self.login("portcullis-sandbox-test.invalid")


if __name__ == "__main__":
    unittest.main()
