"""
test_demo.py -- the README's "Try it" commands, run as printed against
`make run` (scripts/run.sh), so that the README cannot drift from the
demo.

README.md marks what is run with an HTML comment before a fenced block:

  <!-- demo -->        a terminal session: "$ " starts a command, a line
                      ending in "\\" continues it, every other line is
                      its output.  The commands run one after the other
                      in one bash (variables carry over), each must exit
                      0, and its output (stdout and stderr) must be
                      exactly the lines shown, blanks squeezed; "..." in
                      a line matches any text, a line "..." any number
                      of lines.
  <!-- demo: log -->   lines that must appear in the `make run` terminal
                      (in any order) since the session block before it.

run.sh runs on free ports and in a private directory (its environment
variables); the commands are rewritten to match (127.0.0.1:2525 and
127.0.0.1 2525 -> PORT, run/ -> that directory, build/cc/ -> the build under
test) and run in a scratch directory.
"""

import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from daemon import BUILD, TOP, base_env, free_port
import oauth_server

README = os.path.join(TOP, "README.md")
RUN_SH = os.path.join(TOP, "scripts", "run.sh")

# The defaults of scripts/run.sh, as README.md prints them.
DEFAULT_PORTS = {
    "PORTCULLIS_RUN_SMTP_PORT": 2525,
    "PORTCULLIS_RUN_SMTPS_PORT": 4650,
    "PORTCULLIS_RUN_IDP_PORT": 9443,
    "PORTCULLIS_RUN_IDP_ADMIN_PORT": 9444,
}

MARKER = re.compile(r"^<!-- demo(?:: (log))? -->\s*$")


# --- reading README.md ---------------------------------------------------

def parse_readme(path=README):
    """The marked blocks, in order: ("shell", [(command, [output
    lines])]) or ("log", [lines])."""
    with open(path) as f:
        lines = f.read().splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        m = MARKER.match(lines[i])
        i += 1
        if not m:
            continue
        if i >= len(lines) or not lines[i].startswith("```"):
            raise ValueError("README.md:%d: a demo marker not followed by "
                             "a fenced block" % i)
        i += 1
        body = []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1
        if m.group(1) == "log":
            blocks.append(("log", body))
        else:
            blocks.append(("shell", parse_session(body)))
    return blocks


def parse_session(body):
    cmds = []
    i = 0
    while i < len(body):
        line = body[i]
        if not line.startswith("$ "):
            raise ValueError("output before any command: %r" % line)
        cmd = [line[2:]]
        while cmd[-1].endswith("\\") and i + 1 < len(body):
            i += 1
            cmd.append(body[i])
        i += 1
        out = []
        while i < len(body) and not body[i].startswith("$ "):
            out.append(body[i])
            i += 1
        cmds.append(("\n".join(cmd), out))
    return cmds


def squeeze(line):
    return " ".join(line.split())


def line_re(expected):
    parts = [re.escape(p) for p in squeeze(expected).split("...")]
    return re.compile("^" + ".*".join(parts) + "$")


def output_matches(expected, actual):
    """actual (lines) is exactly expected (lines, with "..." wildcards)."""
    actual = [squeeze(l) for l in actual]

    def match(e, a):
        if e == len(expected):
            return a == len(actual)
        if expected[e].strip() == "...":
            return any(match(e + 1, k) for k in range(a, len(actual) + 1))
        return (a < len(actual) and line_re(expected[e]).match(actual[a])
                is not None and match(e + 1, a + 1))
    return match(0, 0)


# --- the demo ----------------------------------------------------------

class Demo:
    """scripts/run.sh in its own session, on free ports, with its run
    directory in a private temporary directory."""

    def __init__(self, node=None):
        self.tmp = tempfile.mkdtemp(prefix="demo-")
        # authd and the IdP (nobody) reach files under it.
        os.chmod(self.tmp, 0o755)
        self.rundir = os.path.join(self.tmp, "run")
        self.work = os.path.join(self.tmp, "work")
        os.mkdir(self.work)
        self.ports = {k: free_port() for k in DEFAULT_PORTS}
        self.env = base_env()
        self.env.update({k: str(v) for k, v in self.ports.items()})
        self.env["PORTCULLIS_RUN_DIR"] = self.rundir
        self.env["BUILD"] = BUILD
        if node is not None:
            self.env["PORTCULLIS_RUN_NODE"] = node
        self.logfile = os.path.join(self.tmp, "make-run.log")
        self.proc = None

    def start(self, timeout=60.0):
        self._log = open(self.logfile, "wb")
        self.proc = subprocess.Popen(["sh", RUN_SH], cwd=TOP, env=self.env,
                                     stdin=subprocess.DEVNULL,
                                     stdout=self._log,
                                     stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.wait_log(r"authd ready", timeout=timeout)
        self.wait_log(r"worker 1 ready", timeout=timeout)
        self.wait_log(r"\(dev-smtps\)", timeout=timeout)
        return self

    def log(self):
        with open(self.logfile, errors="replace") as f:
            return f.read()

    def wait_log(self, pattern, timeout=10.0, since=0):
        deadline = time.monotonic() + timeout
        while True:
            text = self.log()[since:]
            if re.search(pattern, text):
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("no %r in the make run output:\n%s"
                                     % (pattern, self.log()))
            time.sleep(0.1)

    def signal(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.proc.wait()
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def localize(self, text):
        """A README command with this demo's ports and directories."""
        for var, port in DEFAULT_PORTS.items():
            text = re.sub(r"\b127\.0\.0\.1([: ])%d\b" % port,
                          r"127.0.0.1\g<1>%d" % self.ports[var], text)
        text = re.sub(r"(?<![\w/.-])run/", self.rundir + "/", text)
        text = re.sub(r"(?<![\w/.-])build/cc/", BUILD + "/", text)
        return text


class Shell:
    """One bash for a whole README, as a reader's terminal: variables
    set by a command are there for the next."""

    MARK = "__demo_done_%d__" % os.getpid()

    def __init__(self, cwd, env):
        self.proc = subprocess.Popen(["bash", "--noprofile", "--norc"],
                                     cwd=cwd, env=env,
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)

    def run(self, cmd, timeout=60.0):
        """(exit status, output)."""
        script = "%s\nprintf '%%s %%d\\n' %s $?\n" % (cmd, self.MARK)
        self.proc.stdin.write(script.encode())
        self.proc.stdin.flush()
        buf = b""
        deadline = time.monotonic() + timeout
        pat = re.compile(re.escape(self.MARK.encode()) + rb" (\d+)\n$")
        while True:
            m = pat.search(buf)
            if m:
                return int(m.group(1)), buf[:m.start()].decode(
                    errors="replace")
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out: %s\noutput so far: %r"
                                     % (cmd, buf))
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    raise AssertionError("bash exited during: %s" % cmd)
                buf += chunk

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


def shell_env(demo):
    env = dict(demo.env)
    env.pop("BUILD", None)
    env["LC_ALL"] = "C"
    return env


# --- the tests ---------------------------------------------------------

class TestReadmeBlocks(unittest.TestCase):
    """The markers themselves: a README that lost them would test
    nothing."""

    def test_the_cascade_is_covered(self):
        blocks = parse_readme()
        text = "\n".join(
            "\n".join(c + "\n" + "\n".join(o) for c, o in b)
            if k == "shell" else "\n".join(b) for k, b in blocks)
        for needed in ("checker=local", "checker=idp", "checker=cache",
                       "--oauth2-bearer", "/pw/token", "/stats",
                       "authctl -f run/portcullis.conf stats",
                       "kill $(cat run/idp/idp.pid)", " 454 ", " 235 "):
            self.assertIn(needed, text)
        self.assertGreaterEqual(sum(1 for k, _ in blocks if k == "log"), 4)

    def test_matcher(self):
        self.assertTrue(output_matches(["a ... c"], ["a  b  c"]))
        self.assertFalse(output_matches(["a"], ["a", "b"]))
        self.assertTrue(output_matches(["..."], []))
        self.assertTrue(output_matches(["x", "...", "y"], ["x", "1", "2", "y"]))
        self.assertFalse(output_matches([], ["unexpected"]))


class TestTryIt(unittest.TestCase):
    """Every marked command of README.md's "Try it", in order."""

    @classmethod
    def setUpClass(cls):
        if not oauth_server.have_node():
            raise unittest.SkipTest("node is not installed: the README's "
                                    "remote demo needs the development IdP")
        oauth_server.ensure_node_modules()
        cls.demo = Demo().start()

    @classmethod
    def tearDownClass(cls):
        cls.demo.cleanup()

    def test_readme_commands(self):
        d = self.demo
        out = d.log()
        self.assertIn("development identity provider, not for production",
                      out)
        self.assertIn("stop the IdP:  kill $(cat %s/idp/idp.pid)"
                      % d.rundir, out)
        self.assertNotIn("remote part off", out)
        sh = Shell(d.work, shell_env(d))
        try:
            since = len(d.log())
            for kind, body in parse_readme():
                if kind == "log":
                    self.check_log(body, since)
                    continue
                since = len(d.log())
                for cmd, expected in body:
                    self.check_command(sh, cmd, expected)
        finally:
            sh.close()

    def check_command(self, sh, cmd, expected):
        local = self.demo.localize(cmd)
        rc, out = sh.run(local)
        lines = out.splitlines()
        while lines and not lines[-1].strip():
            lines.pop()
        self.assertEqual(rc, 0, "README command failed (exit %d):\n%s\n"
                         "output:\n%s\nmake run:\n%s"
                         % (rc, local, out, self.demo.log()[-3000:]))
        self.assertTrue(output_matches(expected, lines),
                        "README command:\n%s\nprinted:\n%s\nthe README "
                        "says:\n%s" % (local, out, "\n".join(expected)))

    def check_log(self, expected, since, timeout=10.0):
        """Each expected line appears in the make run output since the
        session block before it."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [squeeze(l) for l in
                     self.demo.log()[since:].splitlines()]
            missing = [e for e in expected
                       if not any(line_re(e).match(l) for l in lines)]
            if not missing:
                return
            if time.monotonic() > deadline:
                self.fail("not in the make run output: %s\nit says:\n%s"
                          % (missing, "\n".join(lines)))
            time.sleep(0.1)


class TestRunLifecycle(unittest.TestCase):

    def test_ctrl_c_stops_the_idp_too(self):
        if not oauth_server.have_node():
            self.skipTest("node is not installed: no IdP to stop")
        d = Demo().start()
        try:
            with open(os.path.join(d.rundir, "idp", "idp.pid")) as f:
                pid = int(f.read())
            os.kill(pid, 0)
            # A terminal's Ctrl-C: SIGINT to the whole process group.
            d.signal(signal.SIGINT)
            d.proc.wait(timeout=20)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                self.fail("the IdP (pid %d) outlived make run" % pid)
            self.assertIn("master", d.log())
            self.assertIn("exiting", d.log())
        finally:
            d.cleanup()

    def test_without_node_the_local_demo_runs(self):
        d = Demo(node="/nonexistent/node").start()
        try:
            out = d.log()
            off = [l for l in out.splitlines()
                   if l.startswith("run: remote part off:")]
            self.assertEqual(len(off), 1, out)
            self.assertIn("Node.js", off[0])
            with open(os.path.join(d.rundir, "portcullis.conf")) as f:
                conf = f.read()
            self.assertIn('checker "local" lmdb', conf)
            self.assertNotIn('checker "idp"', conf)
            self.assertNotIn('checker "cache"', conf)
            sh = Shell(d.work, shell_env(d))
            try:
                swaks = ("swaks --server 127.0.0.1:2525 --tls --auth PLAIN "
                         "--quit-after AUTH --auth-user %s --auth-password "
                         "%s 2>&1 | grep -E ' (235|454|535) '")
                rc, got = sh.run(d.localize(swaks % ("demo@example.org",
                                                     "demo")))
                self.assertIn(" 235 ", got)
                rc, got = sh.run(d.localize(swaks % ("alice@example.org",
                                                     "alice-password")))
                self.assertIn(" 535 ", got)
            finally:
                sh.close()
        finally:
            d.cleanup()


if __name__ == "__main__":
    unittest.main()
