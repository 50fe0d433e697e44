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
import random
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
# keys-user's default, left out of the configuration: a build or an
# authctl from before the word can still read what a Daemon writes.
KEYS_USER = "_portcullis_keys" if IS_ROOT else WORKER_USER


# A port for a server of the tests, taken below the kernel's ephemeral
# range (net.ipv4.ip_local_port_range): a port in that range that is
# free when it is picked may be taken, before the server binds it, by
# one of the thousands of outgoing connections the tests make (seen: an
# OAuth server failing with EADDRINUSE in CI).
_PORTS = random.Random()


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    low, high = 20000, _ephemeral_low() - 1
    for _ in range(200 if high > low else 0):
        port = _PORTS.randint(low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env():
    env = dict(os.environ)
    env["PORTCULLIS_LIBEXEC"] = BUILD
    # LeakSanitizer needs /proc, which a chrooted worker cannot see.
    env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
    return env


def make_cert(cert, key, hostname):
    """A self-signed certificate and its key (mode 0600) for hostname."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
         "-subj", "/CN=%s" % hostname,
         "-addext", "subjectAltName=DNS:%s" % hostname,
         "-keyout", key, "-out", cert],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        timeout=30)
    os.chmod(key, 0o600)
    os.chmod(cert, 0o644)


def run_check(path):
    """portcullisd -n -f path: (exit status, output)."""
    p = subprocess.run([PORTCULLISD, "-n", "-f", path], env=base_env(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    return p.returncode, p.stdout.decode(errors="replace")


class Daemon:
    """A portcullisd with its own directory, ports and configuration.

    Besides the historical arguments, the ESMTP tests may give:

    listen      options of the main listener ("tls", "tls require",
                "auth require", ...); its port is self.port
    listeners   {name: options} for more listeners on free ports, e.g.
                {"smtps": "smtps"}; self.ports[name] is each port
                (self.ports["main"] is self.port)
    pki         generate a self-signed certificate for the hostname with
                openssl(1) and declare it; implied by any tls or smtps
                listener (self.cert is its path)
    deliver     what follows "deliver to": "spool", "console",
                'relay "smtp://127.0.0.1:2525"'...
    conf_extra  more configuration lines (same as extra)
    settings    keyword settings, dashes for underscores:
                max_message_size="2M", max_recipients=3, max_errors=3,
                max_sessions_per_address=2, bare_newlines="normalize",
                local_domains=["example.org"],
                timeout={"command": "2s"}
    An "auth" listener gets an auth block with an lmdb checker (the
    configuration requires one).
    """

    def __init__(self, workers=2, grace="2s", extra="", hostname="test.local",
                 listen="", listeners=None, pki=None, deliver="spool",
                 conf_extra="", **settings):
        self.dir = tempfile.mkdtemp(prefix="portcullis-test-")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.workers = workers
        self.grace = grace
        self.extra = extra
        self.hostname = hostname
        self.listen = listen
        self.ports = {"main": self.port}
        self.listeners = {}
        for name, opts in (listeners or {}).items():
            self.ports[name] = free_port()
            self.listeners[name] = opts
        all_opts = " ".join([listen] + list(self.listeners.values()))
        if pki is None:
            pki = bool(re.search(r"\b(tls|smtps)\b", all_opts))
        self.pki = pki
        self.auth = bool(re.search(r"\bauth\b", all_opts))
        self.deliver = deliver
        self.conf_extra = conf_extra
        self.settings = settings
        self.chroot = os.path.join(self.dir, "empty")
        self.conf = os.path.join(self.dir, "portcullis.conf")
        self.logfile = os.path.join(self.dir, "log")
        self.spool = os.path.join(self.dir, "spool")
        self.cert = os.path.join(self.dir, "cert.pem")
        self.key = os.path.join(self.dir, "key.pem")
        self.proc = None
        if self.pki:
            make_cert(self.cert, self.key, hostname)
        self.write_conf()

    def settings_text(self):
        lines = []
        for key, value in self.settings.items():
            word = key.replace("_", "-")
            if key == "local_domains":
                lines.append("local-domains { %s }"
                             % " ".join('"%s"' % d for d in value))
            elif key == "timeout":
                for kind, duration in value.items():
                    lines.append("timeout %s %s" % (kind, duration))
            else:
                lines.append("%s %s" % (word, value))
        return "".join(line + "\n" for line in lines)

    def conf_text(self, hostname=None):
        text = (
            'hostname "%s"\n'
            'user "%s"\n'
            'auth-user "%s"\n'
            'chroot "%s"\n'
            "workers %d\n"
            "grace-period %s\n"
            'spool "%s/spool"\n'
            'control-socket "%s/control.sock"\n'
            "listen on 127.0.0.1 port %d%s\n"
            "deliver to %s\n"
            "%s\n"
            % (hostname or self.hostname, WORKER_USER, AUTH_USER,
               self.chroot, self.workers, self.grace, self.dir, self.dir,
               self.port, " " + self.listen if self.listen else "", self.deliver,
               self.extra))
        for name, opts in self.listeners.items():
            text += ('listen on 127.0.0.1 port %d name "%s" %s\n'
                     % (self.ports[name], name, opts))
        if self.pki:
            text += ('pki "%s" cert "%s" key "%s"\n'
                     % (self.hostname, self.cert, self.key))
        if self.auth:
            text += ('auth {\n\tchecker "local" lmdb "%s/db"\n'
                     "\tfailure-delay 0s\n}\n" % self.dir)
        text += self.settings_text()
        if self.conf_extra:
            text += self.conf_extra + "\n"
        return text

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

    def connect_to(self, listener="main", timeout=5.0):
        return socket.create_connection(
            ("127.0.0.1", self.ports[listener]), timeout=timeout)

    def spooled(self, sub="new"):
        """The names of the files in spool/new (or spool/tmp)."""
        try:
            return sorted(os.listdir(os.path.join(self.spool, sub)))
        except FileNotFoundError:
            return []

    def spool_file(self, name, sub="new"):
        with open(os.path.join(self.spool, sub, name), "rb") as f:
            return f.read()

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
        # A sanitizer report in any process fails the test that ran it.
        report = None
        if self.proc is not None:
            log = self.log()
            m = re.search(r"(ERROR: AddressSanitizer|ERROR: LeakSanitizer|"
                          r"runtime error:)", log)
            if m:
                report = log[max(0, m.start() - 200):m.start() + 3000]
        shutil.rmtree(self.dir, ignore_errors=True)
        if report is not None:
            raise AssertionError("sanitizer report in the daemon's log:\n"
                                 + report)


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
