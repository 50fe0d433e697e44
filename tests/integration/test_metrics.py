"""
test_metrics.py -- the Prometheus endpoint (portcullis-metrics) against a
real Prometheus (Debian's prometheus and promtool).

One portcullisd with "metrics listen on" and one Prometheus scraping it
every second run for the whole module.  The tests drive real SMTP
traffic (smtplib: AUTH PLAIN and LOGIN, STARTTLS, messages to the
spool) and check that Prometheus stored exactly what the traffic says,
that promtool accepts a scrape and the alerting rules, that hostile
scrapers (a slowloris, a 1 MB request line, POST, 1,000 connections at
once) are refused or closed while AUTH+send still completes in under a
second, and that killing the metrics process loses no counter.
"""

import base64
import json
import os
import resource
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request

from daemon import BUILD, TOP, Daemon, base_env, free_port

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
RULES = os.path.join(TOP, "etc", "prometheus", "portcullis-rules.yml")
DASHBOARD = os.path.join(TOP, "etc", "grafana", "portcullis.json")
AUTHCTL = os.path.join(BUILD, "authctl")

AUTH_BLOCK = """auth {
	checker "demo" static {
		user "bob@example.org" password "plainpw"
	}
	failure-delay 0s
	max-auth-failures 10
}
"""

D = None
PROM = None


class Prometheus:
    """A Prometheus server on loopback, scraping the daemon every 1 s."""

    def __init__(self, target):
        self.dir = tempfile.mkdtemp(prefix="portcullis-prom-")
        self.port = free_port()
        self.conf = os.path.join(self.dir, "prometheus.yml")
        with open(self.conf, "w") as f:
            f.write("global:\n"
                    "  scrape_interval: 1s\n"
                    "  scrape_timeout: 1s\n"
                    "  evaluation_interval: 1s\n"
                    "rule_files:\n"
                    "  - %s\n"
                    "scrape_configs:\n"
                    "  - job_name: portcullis\n"
                    "    static_configs:\n"
                    "      - targets: ['%s']\n" % (RULES, target))
        self.logf = open(os.path.join(self.dir, "log"), "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + self.conf,
             "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port,
             "--web.enable-lifecycle"],
            stdin=subprocess.DEVNULL, stdout=self.logf,
            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.url("/-/ready"), timeout=2)
                return
            except OSError:
                if self.proc.poll() is not None or \
                        time.monotonic() > deadline:
                    raise AssertionError("prometheus did not start:\n"
                                         + self.log())
                time.sleep(0.2)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def log(self):
        with open(os.path.join(self.dir, "log"), "rb") as f:
            return f.read().decode(errors="replace")

    def api(self, path, **params):
        q = urllib.parse.urlencode(params)
        with urllib.request.urlopen(self.url("/api/v1/%s?%s" % (path, q)),
                                    timeout=5) as r:
            doc = json.load(r)
        assert doc["status"] == "success", doc
        return doc["data"]

    def value(self, expr):
        """The instant value of expr now; None when it has no sample."""
        res = self.api("query", query=expr)["result"]
        if not res:
            return None
        return float(res[0]["value"][1])

    def wait_value(self, expr, want, timeout=15.0):
        deadline = time.monotonic() + timeout
        got = None
        while time.monotonic() < deadline:
            got = self.value(expr)
            if got == want:
                return got
            time.sleep(0.25)
        raise AssertionError("%s: want %r, Prometheus has %r" % (expr, want,
                                                                 got))

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.logf.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def setUpModule():
    global D, PROM
    if PROMETHEUS is None or PROMTOOL is None:
        raise unittest.SkipTest("prometheus and promtool not installed "
                                "(make deps)")
    D = Daemon(listen="tls", local_domains=["example.org"],
               conf_extra=AUTH_BLOCK)
    D.metrics_port = free_port()
    D.write_conf(D.conf_text() + "metrics listen on 127.0.0.1 port %d\n"
                 % D.metrics_port)
    D.start()
    D.wait_log(r"metrics ready")
    try:
        PROM = Prometheus("127.0.0.1:%d" % D.metrics_port)
    except Exception:
        D.stop()
        raise


def tearDownModule():
    if PROM is not None:
        PROM.stop()
    if D is not None:
        D.stop()


def scrape(path="/metrics", accept=None, timeout=5):
    req = urllib.request.Request("http://127.0.0.1:%d%s"
                                 % (D.metrics_port, path))
    if accept:
        req.add_header("Accept", accept)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, dict(r.headers), r.read().decode()


def series(text, name, **labels):
    """The sum of the samples of name whose labels include labels."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, value = line.rsplit(" ", 1)
        metric, _, rest = head.partition("{")
        if metric != name:
            continue
        if all('%s="%s"' % kv in rest for kv in labels.items()):
            total += float(value)
    return total


def smtp_session():
    s = smtplib.SMTP("127.0.0.1", D.port, timeout=10)
    s.ehlo("client.example")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s.starttls(context=ctx)
    s.ehlo("client.example")
    return s


def auth_and_send(password="plainpw", send=True, mech="PLAIN"):
    """One session: STARTTLS, AUTH, perhaps a message; True if AUTH ok."""
    s = smtp_session()
    try:
        if mech == "PLAIN":
            cred = b"\0bob@example.org\0" + password.encode()
            code, _ = s.docmd("AUTH", "PLAIN "
                              + base64.b64encode(cred).decode())
        else:
            # smtplib's login() would pick PLAIN: LOGIN by hand.
            code, _ = s.docmd("AUTH", "LOGIN " + base64.b64encode(
                b"bob@example.org").decode())
            if code == 334:
                code, _ = s.docmd(base64.b64encode(
                    password.encode()).decode())
        if code == 235 and send:
            s.sendmail("bob@example.org", ["bob@example.org"],
                       "Subject: metrics\r\n\r\nhello\r\n")
        s.quit()
        return code == 235
    finally:
        s.close()


class MetricsTest(unittest.TestCase):

    def test_01_target_up_and_counters_move_exactly(self):
        """N good logins, M bad, K messages: Prometheus stores exactly."""
        deadline = time.monotonic() + 15
        while True:
            targets = PROM.api("targets")["activeTargets"]
            if targets and targets[0]["health"] == "up":
                break
            self.assertLess(time.monotonic(), deadline,
                            "target never up: %r" % targets)
            time.sleep(0.25)

        ok = 'sum(portcullis_auth_attempts_total{result="ok"})'
        fail = 'sum(portcullis_auth_attempts_total{result="fail"})'
        msgs = 'sum(portcullis_messages_total{result="accepted"})'
        tls = 'sum(portcullis_tls_handshakes_total{result="ok"})'
        base = {e: PROM.value(e) or 0.0 for e in (ok, fail, msgs, tls)}
        n, m, k = 3, 2, 2
        for i in range(n):
            self.assertTrue(auth_and_send(send=i < k,
                                          mech="PLAIN" if i else "LOGIN"))
        for _ in range(m):
            self.assertFalse(auth_and_send("wrong", send=False))
        PROM.wait_value(ok, base[ok] + n)
        PROM.wait_value(fail, base[fail] + m)
        PROM.wait_value(msgs, base[msgs] + k)
        PROM.wait_value(tls, base[tls] + n + m)
        # Bounded labels: the mechanism, never a user or an address.
        res = PROM.api("query", query="portcullis_auth_attempts_total")
        for r in res["result"]:
            ours = {k: v for k, v in r["metric"].items()
                    if k not in ("instance", "job")}
            self.assertNotIn("bob", json.dumps(ours))
            self.assertNotIn("127.0.0.1", json.dumps(ours))
        mechs = {r["metric"]["mechanism"] for r in res["result"]}
        self.assertTrue({"PLAIN", "LOGIN"} <= mechs, mechs)
        # authctl stats reads the same counters.
        _, _, text = scrape()
        p = subprocess.run([AUTHCTL, "-f", D.conf, "stats"],
                           capture_output=True, text=True, env=base_env(),
                           timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        table, _, counters = p.stdout.partition("\n\n")
        rows = {l.split()[0]: [int(x) for x in l.split()[1:]]
                for l in table.splitlines()[1:]}
        # ... and the penalty counters after them, each by its name.
        for line in counters.splitlines():
            name, value = line.split()
            self.assertEqual(int(value), series(
                text, "portcullis_penalties_total", kind=name), name)
        self.assertEqual(rows["demo"][0], series(
            text, "portcullis_auth_attempts_total", checker="demo",
            result="ok"))
        self.assertEqual(rows["none"][1], series(
            text, "portcullis_auth_attempts_total", checker="none",
            result="fail"))

    def test_02_promtool_check_metrics_after_traffic(self):
        auth_and_send()
        _, headers, text = scrape()
        self.assertTrue(headers["Content-Type"].startswith(
            "text/plain; version=0.0.4"), headers)
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr + text)
        for name in ("portcullis_sessions_total",
                     "portcullis_sessions_active",
                     "portcullis_tls_handshakes_total",
                     "portcullis_received_bytes_total",
                     "portcullis_auth_duration_seconds_bucket",
                     "portcullis_deliveries_total",
                     "portcullis_delivery_duration_seconds_count",
                     "portcullis_checker_up", "portcullis_build_info",
                     "portcullis_config_generation",
                     "portcullis_process_up"):
            self.assertIn("\n" + name, text)
        self.assertEqual(series(text, "portcullis_process_up"), 4.0,
                         "master, authd and 2 workers answered")
        # OpenMetrics when asked, ending with # EOF.
        _, headers, om = scrape(accept="application/openmetrics-text; "
                                       "version=1.0.0")
        self.assertTrue(headers["Content-Type"].startswith(
            "application/openmetrics-text"), headers)
        self.assertTrue(om.endswith("# EOF\n"))
        self.assertIn("# TYPE portcullis_auth_attempts counter", om)
        self.assertIn("# TYPE portcullis_build info", om)

    def test_03_promtool_check_and_test_rules(self):
        p = subprocess.run([PROMTOOL, "check", "rules", RULES],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        tests = os.path.join(os.path.dirname(__file__),
                             "metrics_rules_test.yml")
        p = subprocess.run([PROMTOOL, "test", "rules", tests],
                           capture_output=True, text=True, timeout=30,
                           cwd=os.path.dirname(tests))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_04_refusals(self):
        self.assertEqual(scrape("/healthz")[2], "ok\n")
        for path, code in (("/", 404), ("/metricsx", 404),
                           ("/" + "a" * 200, 404)):
            with self.assertRaises(urllib.error.HTTPError) as e:
                scrape(path)
            self.assertEqual(e.exception.code, code)
        req = urllib.request.Request("http://127.0.0.1:%d/metrics"
                                     % D.metrics_port, data=b"x=1")
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=5)
        self.assertEqual(e.exception.code, 405)
        self.assertEqual(e.exception.headers["Allow"], "GET")
        # A 1 MB request line: 414 once 8 KiB are in, then closed.
        with socket.create_connection(("127.0.0.1", D.metrics_port),
                                      timeout=5) as s:
            try:
                s.sendall(b"GET /" + b"a" * (1 << 20))
            except OSError:
                pass        # closed under our feet: refused too
            got = b""
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
            except OSError:
                pass
            self.assertTrue(got == b"" or got.startswith(b"HTTP/1.1 414"),
                            got[:100])

    def test_05_hostile_scrapers_cost_smtp_nothing(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = min(hard, 8192) if hard != resource.RLIM_INFINITY else 8192
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        port = D.metrics_port
        stop = threading.Event()
        closed_at = []

        def slowloris():
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            start = time.monotonic()
            try:
                s.sendall(b"GET /metrics HTTP/1.1\r\n")
                while not stop.is_set():
                    s.sendall(b"X")
                    s.settimeout(0.3)
                    try:
                        if s.recv(100) == b"":
                            break
                    except socket.timeout:
                        continue
            except OSError:
                pass
            closed_at.append(time.monotonic() - start)
            s.close()

        threads = [threading.Thread(target=slowloris) for _ in range(20)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        # 1,000 connections at once, holding them open.
        socks = []
        try:
            for _ in range(1000):
                s = socket.socket()
                s.setblocking(False)
                try:
                    s.connect(("127.0.0.1", port))
                except BlockingIOError:
                    pass
                socks.append(s)
            # Meanwhile SMTP does not notice.
            t0 = time.monotonic()
            self.assertTrue(auth_and_send())
            self.assertLess(time.monotonic() - t0, 1.0)
        finally:
            for s in socks:
                s.close()
        for t in threads:
            t.join(timeout=15)
        stop.set()
        # Every slowloris was cut at the head timeout (5 s), not served.
        self.assertEqual(len(closed_at), 20)
        self.assertTrue(all(t < 9 for t in closed_at), closed_at)
        # And the endpoint serves again.
        deadline = time.monotonic() + 10
        while True:
            try:
                status, _, text = scrape()
                break
            except OSError:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.2)
        self.assertEqual(status, 200)
        self.assertGreater(series(text, "portcullis_metrics_http_requests_"
                                  "total", code="503"), 0)
        self.assertGreater(series(text, "portcullis_metrics_http_requests_"
                                  "total", code="408"), 0)

    def test_06_metrics_killed_restarted_counters_kept(self):
        auth_and_send()
        _, _, before = scrape()
        ok = series(before, "portcullis_auth_attempts_total", result="ok")
        sent = series(before, "portcullis_messages_total", result="accepted")
        self.assertGreater(ok, 0)
        [pid] = D.pids("metrics")
        os.kill(pid, signal.SIGKILL)
        [new] = D.wait_pids("metrics", 1, exclude=(pid,), timeout=10)
        self.assertNotEqual(new, pid)
        D.wait_log(r"metrics ready", count=2)
        deadline = time.monotonic() + 10
        while True:
            try:
                _, _, after = scrape()
                if series(after, "portcullis_process_up") == 4.0:
                    break
            except OSError:
                pass
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.2)
        self.assertEqual(series(after, "portcullis_auth_attempts_total",
                                result="ok"), ok)
        self.assertEqual(series(after, "portcullis_messages_total",
                                result="accepted"), sent)
        self.assertEqual(series(after, "portcullis_process_restarts_total",
                                process="metrics"), 1.0)
        # And Prometheus sees the restart too.
        PROM.wait_value('sum(portcullis_process_restarts_total'
                        '{process="metrics"})', 1.0)

    def test_07_dashboard_queries_run(self):
        """Every query of the Grafana dashboard is one Prometheus runs."""
        with open(DASHBOARD) as f:
            dash = json.load(f)
        exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
        self.assertGreater(len(exprs), 15)
        auth_and_send()
        found = 0
        for e in exprs:
            q = e.replace("$instance", ".*").replace("$__rate_interval",
                                                      "1m")
            res = PROM.api("query", query=q)
            found += bool(res["result"])
        # Most have data already (no cache checker, no relay here).
        self.assertGreater(found, len(exprs) // 2)

    def test_08_reload_counted(self):
        """SIGHUP: a reload counted, a new generation, no series lost."""
        _, _, before = scrape()
        ok = series(before, "portcullis_auth_attempts_total", result="ok")
        since = D.log_offset()
        os.kill(D.proc.pid, signal.SIGHUP)
        D.wait_log(r"configuration reloaded, generation 1", since=since)
        D.wait_log(r"authd ping ok", count=D.workers, since=since)
        self.assertTrue(auth_and_send())
        deadline = time.monotonic() + 10
        while True:
            _, _, text = scrape()
            if series(text, "portcullis_auth_attempts_total",
                      result="ok") == ok + 1:
                break
            self.assertLess(time.monotonic(), deadline, text)
            time.sleep(0.2)
        self.assertEqual(series(text, "portcullis_config_reloads_total",
                                result="ok"), 1.0)
        self.assertEqual(series(text, "portcullis_config_generation"), 1.0)
        PROM.wait_value('portcullis_config_generation', 1.0)


class BearerTest(unittest.TestCase):
    """bearer-token-file: /metrics wants the token, /healthz does not."""

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(local_domains=["example.org"])
        cls.d.metrics_port = free_port()
        token = os.path.join(cls.d.dir, "metrics.token")
        with open(token, "w") as f:
            f.write("s3cret-Token.1\n")
        os.chmod(token, 0o640)
        cls.d.write_conf(cls.d.conf_text() + 'metrics listen on 127.0.0.1 '
                         'port %d bearer-token-file "%s"\n'
                         % (cls.d.metrics_port, token))
        cls.d.start()
        cls.d.wait_log(r"metrics ready")

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def get(self, path, token=None):
        req = urllib.request.Request("http://127.0.0.1:%d%s"
                                     % (self.d.metrics_port, path))
        if token is not None:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("WWW-Authenticate")

    def test_token(self):
        self.assertEqual(self.get("/metrics"),
                         (401, 'Bearer realm="portcullis"'))
        self.assertEqual(self.get("/metrics", "s3cret-Token.2")[0], 401)
        self.assertEqual(self.get("/metrics", "s3cret-Token.")[0], 401)
        status, text = self.get("/metrics", "s3cret-Token.1")
        self.assertEqual(status, 200)
        self.assertIn("portcullis_build_info", text)
        self.assertEqual(self.get("/healthz"), (200, "ok\n"))
        self.assertNotIn("s3cret", self.d.log())

    def test_world_readable_token_refused(self):
        d = Daemon()
        try:
            token = os.path.join(d.dir, "metrics.token")
            with open(token, "w") as f:
                f.write("x\n")
            os.chmod(token, 0o644)
            d.write_conf(d.conf_text() + 'metrics listen on 127.0.0.1 '
                         'port %d bearer-token-file "%s"\n'
                         % (free_port(), token))
            d.log_fh = open(d.logfile, "wb")
            d.proc = subprocess.Popen(
                [os.path.join(BUILD, "portcullisd"), "-d", "-f", d.conf],
                env=base_env(), stdout=d.log_fh, stderr=subprocess.STDOUT,
                start_new_session=True)
            self.assertNotEqual(d.proc.wait(timeout=10), 0)
            self.assertIn("readable or writable by others", d.log())
        finally:
            d.stop()


if __name__ == "__main__":
    unittest.main()
