"""
daemon.py -- start a real portcullisd for a test and look at it.

A Daemon writes a configuration into a private temporary directory,
starts `portcullisd -d` from the build tree on free loopback ports,
collects its stderr (every process logs there in the foreground), and
offers what the tests need: the log, waiting for a log line, the
process tree read from /proc, and a clean stop.
"""

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(TOP, os.environ.get("PORTCULLIS_BUILD", "build/cc"))
PORTCULLISD = os.path.join(BUILD, "portcullisd")

IS_ROOT = os.geteuid() == 0
WORKER_USER = "_portcullis" if IS_ROOT else pwd.getpwuid(os.getuid()).pw_name
AUTH_USER = "_portcullis_auth" if IS_ROOT else WORKER_USER


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env():
    env = dict(os.environ)
    env["PORTCULLIS_LIBEXEC"] = BUILD
    # LeakSanitizer needs /proc, which a chrooted worker cannot see.
    env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
    return env


def run_check(path):
    """portcullisd -n -f path: (exit status, output)."""
    p = subprocess.run([PORTCULLISD, "-n", "-f", path], env=base_env(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    return p.returncode, p.stdout.decode(errors="replace")


class Daemon:
    def __init__(self, workers=2, grace="2s", extra="", hostname="test.local"):
        self.dir = tempfile.mkdtemp(prefix="portcullis-test-")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.workers = workers
        self.grace = grace
        self.extra = extra
        self.hostname = hostname
        self.chroot = os.path.join(self.dir, "empty")
        self.conf = os.path.join(self.dir, "portcullis.conf")
        self.logfile = os.path.join(self.dir, "log")
        self.proc = None
        self.write_conf()

    def conf_text(self, hostname=None):
        return (
            'hostname "%s"\n'
            'user "%s"\n'
            'auth-user "%s"\n'
            'chroot "%s"\n'
            "workers %d\n"
            "grace-period %s\n"
            'spool "%s/spool"\n'
            "listen on 127.0.0.1 port %d\n"
            "deliver to spool\n"
            "%s\n"
            % (hostname or self.hostname, WORKER_USER, AUTH_USER,
               self.chroot, self.workers, self.grace, self.dir, self.port,
               self.extra))

    def write_conf(self, text=None):
        with open(self.conf, "w") as f:
            f.write(text if text is not None else self.conf_text())
        os.chmod(self.conf, 0o644)

    def start(self):
        self.log_fh = open(self.logfile, "wb")
        self.proc = subprocess.Popen(
            [PORTCULLISD, "-d", "-v", "-f", self.conf], env=base_env(),
            stdin=subprocess.DEVNULL, stdout=self.log_fh,
            stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_log(r"authd ping ok", count=self.workers)
        return self

    def log(self):
        with open(self.logfile, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_log(self, pattern, count=1, timeout=10.0, since=0):
        """Wait until pattern occurs count times after offset since."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            text = self.log()[since:]
            if len(rx.findall(text)) >= count:
                return text
            if self.proc.poll() is not None:
                raise AssertionError("portcullisd exited (%s) while waiting "
                                     "for %r:\n%s" % (self.proc.returncode,
                                                      pattern, self.log()))
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for %r x%d:\n%s"
                                     % (pattern, count, self.log()))
            time.sleep(0.05)

    def log_offset(self):
        return len(self.log())

    def children(self):
        """{pid: title} of master's children, from /proc."""
        kids = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    stat = f.read()
                state, ppid = stat.rsplit(")", 1)[1].split()[:2]
                if int(ppid) != self.proc.pid or state == "Z":
                    continue
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    title = f.read().replace(b"\0", b" ").decode().strip()
                kids[int(d)] = title
            except (OSError, IndexError, ValueError):
                continue
        return kids

    def pids(self, role):
        return sorted(p for p, t in self.children().items()
                      if t.startswith("portcullis: " + role))

    def wait_pids(self, role, n, exclude=(), timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = [p for p in self.pids(role) if p not in exclude]
            if len(pids) >= n:
                return pids
            time.sleep(0.02)
        raise AssertionError("no %d %s process(es) within %.1fs; have %r\n%s"
                             % (n, role, timeout, self.children(), self.log()))

    def connect(self, timeout=5.0):
        s = socket.create_connection(("127.0.0.1", self.port),
                                     timeout=timeout)
        return s

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc is not None:
            # Children must not outlive master.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.log_fh.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def read_reply(sock):
    """Read one SMTP reply (all its lines); return the text."""
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return data.decode(errors="replace")
        data += chunk
        lines = data.split(b"\r\n")
        for line in lines[:-1]:
            if len(line) >= 4 and line[3:4] == b" ":
                return data.decode(errors="replace")


def greet_and_quit(d):
    s = d.connect()
    try:
        greeting = read_reply(s)
        s.sendall(b"QUIT\r\n")
        bye = read_reply(s)
    finally:
        s.close()
    return greeting, bye
