"""
bench.py -- make bench: portcullis side by side with Postfix (+ Dovecot
SASL) and OpenSMTPD, in one run, on loopback, with the same users, the
same hash scheme (sha512-crypt, so that the servers' own overhead shows),
the same TLS certificate, and each server's own durability (portcullis
and Postfix fsync before 250, OpenSMTPD does not: the table says so).

Each scenario runs with a pipelining client and with one that waits for
each reply; each row gets the machine's limit for it, from unit costs
measured in the same run (table.py's header says how).  It prints the
tables, and writes the raw results as JSON (and the tables as markdown)
to build/bench/results-DATE.{json,md}; table.py turns that JSON back
into the tables.  Nothing is asserted about speed here: the tables are
the result.
"""

import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))

from daemon import BUILD, Daemon, free_port  # noqa: E402
from benchutil import log, pss_kib, smtpload, tree_pids  # noqa: E402
import fleet_bench  # noqa: E402
import metrics_bench  # noqa: E402
import node_bench  # noqa: E402
import oauth_bench  # noqa: E402
import scram_bench  # noqa: E402
import ldap_bench  # noqa: E402
import sql_bench  # noqa: E402
import keys_bench  # noqa: E402
import table  # noqa: E402

SMTPLOAD = os.path.join(BUILD, "smtpload")
HASHRATE = os.path.join(BUILD, "hashrate")
TLSRATE = os.path.join(BUILD, "tlsrate")
SMTPSINK = os.path.join(BUILD, "smtpsink")
TLS_SHIM = os.path.join(BUILD, "opensmtpd_tls_shim.so")
AUTHCTL = os.path.join(BUILD, "authctl")
PEERS = os.path.join(HERE, "peers")
NUSERS = 50
DURATION = int(os.environ.get("BENCH_SECONDS", "8"))
DOMAIN = "bench.test"
CORES = os.cpu_count()
OUTDIR = os.path.join(TOP, "build", "bench")


def sha512(password):
    return subprocess.run(["openssl", "passwd", "-6", password],
                          capture_output=True, text=True,
                          check=True).stdout.strip()


def make_users(workdir):
    """USERFILE (user:password) for clients and peers, and the hashes."""
    users = [("u%d@%s" % (i, DOMAIN), "pw-%d-bench" % i)
             for i in range(NUSERS)]
    userfile = os.path.join(workdir, "users.txt")
    with open(userfile, "w") as f:
        for u, p in users:
            f.write("%s:%s\n" % (u, p))
    os.chmod(userfile, 0o644)
    hashes = {u: sha512(p) for u, p in users}
    return users, userfile, hashes


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return "%d cores, %s, %s" % (os.cpu_count(), model, platform.platform())


class Portcullis:
    name = "portcullis"
    durable = True

    def __init__(self, workdir, users, hashes):
        self.d = Daemon(workers=CORES, listen="tls",
                        listeners={"smtps": "smtps"},
                        local_domains=[DOMAIN],
                        max_sessions=200000,
                        max_sessions_per_address=200000,
                        conf_extra="")
        db = os.path.join(self.d.dir, "db")
        self.d.conf_extra = ('auth {\n\tchecker "local" lmdb "%s"\n'
                             "\tfailure-delay 0s\n}\n" % db)
        self.d.write_conf()
        imp = os.path.join(self.d.dir, "import.txt")
        with open(imp, "w") as f:
            for u, _ in users:
                f.write("%s:{SHA512-CRYPT}%s\n" % (u, hashes[u]))
        subprocess.run([AUTHCTL, "-f", self.d.conf, "user", "import", imp],
                       check=True, capture_output=True)
        self.modes = {"plain": self.d.port, "starttls": self.d.port,
                      "smtps": self.d.ports["smtps"], "noauth": self.d.port}
        self.idle_port = self.d.port
        self.ok = True
        self.stopped = False

    def start(self):
        self.d.start()

    def pids(self):
        return tree_pids(self.d.proc.pid)

    def stop(self):
        # Once: Daemon.stop() removes its directory, and a second call
        # would look for the log in it.
        if self.stopped:
            return
        self.stopped = True
        self.d.stop()


class Peer:
    """A peer started by its script in peers/: start DIR PORT USERFILE
    [more ports]; modes maps each scenario's mode to the index of its
    port (None: a reason it cannot serve it)."""

    def __init__(self, name, script, workdir, userfile, nports, modes,
                 durable, env):
        self.name = name
        self.durable = durable
        self.script = os.path.join(PEERS, script)
        self.dir = os.path.join(workdir, script.replace(".sh", ""))
        os.makedirs(self.dir, exist_ok=True)
        self.userfile = userfile
        self.ports = [free_port() for _ in range(nports)]
        self.modes = {m: (self.ports[i] if isinstance(i, int) else i)
                      for m, i in modes.items()}
        self.idle_port = self.ports[0]
        self.env = env
        self.ok = False

    def start(self):
        # A file, not a pipe: the daemons it starts keep their stdout,
        # and a pipe would never see EOF.
        out = os.path.join(os.path.dirname(self.dir), self.name + ".start")
        env = dict(os.environ, **self.env)
        with open(out, "w") as f:
            p = subprocess.run(["bash", self.script, "start", self.dir,
                                str(self.ports[0]), self.userfile] +
                               [str(x) for x in self.ports[1:]],
                               stdin=subprocess.DEVNULL, stdout=f,
                               stderr=subprocess.STDOUT, timeout=600,
                               env=env)
        self.ok = p.returncode == 0
        with open(out) as f:
            text = f.read()
        if not self.ok:
            log("%s did not start: %s" % (self.name, text[-800:]))
        else:
            log(text.strip().splitlines()[-1] if text.strip() else "")

    def pids(self):
        p = subprocess.run(["bash", self.script, "pids", self.dir],
                           capture_output=True, text=True, timeout=30)
        out = []
        for w in p.stdout.split():
            if w.isdigit():
                out.extend(tree_pids(int(w)))
        return sorted(set(out))

    def stop(self):
        subprocess.run(["bash", self.script, "stop", self.dir],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=120)


def why(res):
    """What went wrong in a run, briefly."""
    if res is None:
        return "no result"
    parts = ["%s x%d" % (code, n)
             for code, n in sorted(res.get("error_replies", {}).items())]
    for key, label in (("timeouts", "timeouts"),
                       ("connection_errors", "conn. errors"),
                       ("tls_errors", "TLS errors"),
                       ("malformed_replies", "malformed"),
                       ("unexpected_replies", "unexpected")):
        if res.get(key):
            parts.append("%d %s" % (res[key], label))
    return "%s in %d sessions" % (", ".join(parts) or "errors",
                                  res.get("sessions_started", 0))


def scenarios(userfile):
    """The rows: what smtpload runs, and the unit costs each unit of the
    row's figure carries (hash verifications, TLS handshakes, fsyncs)."""
    rcpt = ["--to", "rcpt@" + DOMAIN]
    auth = ["--auth", userfile] + rcpt
    tlsargs = {"plain": [], "starttls": ["--starttls"], "smtps": ["--tls"],
               "noauth": []}
    rows = []

    def add(scenario, mode, c, args, metric, unit, hashes, fsyncs,
            clients=(True, False)):
        for pipe in clients:
            rows.append({
                "scenario": scenario, "mode": mode, "c": c,
                "client": {True: "pipelining", False: "no pipelining",
                           None: "-"}[pipe],
                "args": (["-c", c, "-t", DURATION] + args + tlsargs[mode] +
                         ([] if pipe in (True, None) else
                          ["--no-pipelining"])),
                "metric": metric, "unit": unit, "hash": hashes,
                "tls": 0 if mode in ("plain", "noauth") else hashes and 1,
                "fsync": fsyncs, "pair": len(clients) == 2})
    for mode in ("plain", "starttls", "smtps"):
        for c in (1, 16, 256):
            add("AUTH + 1 x 4 KiB, %s, c=%d" % (mode, c), mode, c,
                ["-s", 4096] + auth, "sessions_per_s", "sessions/s", 1, 1)
    add("AUTH + 10 x 4 KiB, plain, c=16", "plain", 16,
        ["-m", 10, "-s", 4096] + auth, "messages_per_s", "messages/s",
        0.1, 1)
    for mode in ("plain", "starttls"):
        add("AUTH only (connect, EHLO, AUTH, QUIT), %s, c=16" % mode, mode,
            16, ["-m", 0] + auth, "sessions_per_s", "auths/s", 1, 0,
            clients=(None,))
    add("no AUTH, 1 x 4 KiB to a known recipient, plain, c=16", "noauth",
        16, ["-s", 4096] + rcpt, "messages_per_s", "messages/s", 0, 1)
    for r in rows:
        if r["mode"] in ("starttls", "smtps"):
            r["tls"] = 1 if r["metric"] == "sessions_per_s" else 0.1
    return rows


def run_rows(rows, servers):
    for r in rows:
        r["figures"] = {}
        for s in servers:
            port = s.modes.get(r["mode"])
            if not isinstance(port, int):
                r["figures"][s.name] = {"na": port or "not served"}
                continue
            log("%s [%s]: %s" % (r["scenario"], r["client"], s.name))
            res = smtpload(port, *r["args"])
            fig = {"value": res.get(r["metric"]) if res else None,
                   "raw": res}
            if res is None or res.get("errors", 0) > 0 or \
                    res.get("sessions_failed", 0) > 0:
                fig["failed"] = why(res)
            r["figures"][s.name] = fig


def fsync_rate(dirpath, writers, seconds):
    """4 KiB files written and fsync'd per second, by so many writers."""
    data = b"x" * 4096
    counts = [0] * writers
    end = time.monotonic() + seconds

    def writer(i):
        path = os.path.join(dirpath, "fsync-probe-%d" % i)
        n = 0
        while time.monotonic() < end:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.write(fd, data)
            os.fsync(fd)
            os.close(fd)
            n += 1
        counts[i] = n
        os.unlink(path)
    threads = [threading.Thread(target=writer, args=(i,))
               for i in range(writers)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - t0)


def unit_costs(cert, key, hashes, users, spooldir):
    u, pw = users[0]
    secs = str(max(2, DURATION // 2))

    def tool(*cmd):
        return float(subprocess.run([str(c) for c in cmd],
                                    capture_output=True, text=True,
                                    check=True).stdout)
    log("unit costs: hash, TLS handshake, fsync")
    return {
        "hash": {"1": tool(HASHRATE, hashes[u], pw, secs, 1),
                 "p": tool(HASHRATE, hashes[u], pw, secs, CORES)},
        "tls": {"1": tool(TLSRATE, cert, key, secs, 1),
                "p": tool(TLSRATE, cert, key, secs, CORES)},
        "fsync": {"1": fsync_rate(spooldir, 1, int(secs)),
                  "16": fsync_rate(spooldir, 16, int(secs))},
    }


def sink_rates(rows, workdir):
    """The load generator's ceiling for each row's shape, without TLS:
    smtpload against smtpsink."""
    port = free_port()
    p = subprocess.Popen([SMTPSINK, str(port)], stdout=subprocess.PIPE,
                         text=True)
    try:
        if p.stdout.readline().strip() != "ready":
            raise RuntimeError("smtpsink did not start")
        cache = {}
        for r in rows:
            args = [a for a in r["args"] if a not in ("--starttls",
                                                      "--tls")]
            key = " ".join(str(a) for a in args)
            if key not in cache:
                log("load generator ceiling: %s" % key)
                # Steady and cheap to measure: half the time will do.
                t = args.index("-t")
                args[t + 1] = max(2, DURATION // 2)
                res = smtpload(port, *args)
                cache[key] = res.get(r["metric"]) if res and \
                    not res.get("errors") else None
            r["sink"] = cache[key]
    finally:
        p.terminate()
        p.wait()


def limit(r, units):
    """The machine's ceiling for row r (see table.HEADER)."""
    if not r.get("sink"):
        return None
    c = r["c"]
    k = "1" if c == 1 else "p"
    cpu = 1.0 / r["sink"]
    if r["hash"]:
        cpu += r["hash"] / units["hash"][k]
    if r["tls"]:
        cpu += r["tls"] / units["tls"][k]
    if c == 1:
        if r["fsync"]:
            cpu += r["fsync"] / units["fsync"]["1"]
        return 1.0 / cpu
    lim = 1.0 / cpu
    if r["fsync"]:
        lim = min(lim, units["fsync"]["16"] / r["fsync"])
    return lim


def finish_rows(rows, names, units):
    """Limits, ratios and the headline (the fairer client kind)."""
    for r in rows:
        figs = r["figures"]
        mine = figs.get("portcullis", {})
        mv = None if mine.get("failed") else mine.get("value")
        if "sink" in r:
            r["limit"] = limit(r, units)
            if r["limit"] and mv:
                r["pct_of_limit"] = 100.0 * mv / r["limit"]
        peers = [f["value"] for n, f in figs.items() if n != "portcullis"
                 and f.get("value") and not f.get("failed")
                 and not f.get("na")]
        if mv and peers:
            if r.get("lower_is_better"):
                r["ratio"] = min(peers) / mv
            else:
                r["ratio"] = mv / max(peers)
    # A pair is two rows in a row with the same scenario.
    i = 0
    while i < len(rows):
        r = rows[i]
        if r.get("pair") and i + 1 < len(rows) and \
                rows[i + 1]["scenario"] == r["scenario"]:
            both = [x["ratio"] for x in (r, rows[i + 1]) if x.get("ratio")]
            r["headline"] = min(both) if both else None
            i += 2
            continue
        r["headline"] = r.get("ratio")
        i += 1


def idle_memory(servers, n):
    figs = {}
    for s in servers:
        before = pss_kib(s.pids())
        p = subprocess.Popen([SMTPLOAD, "-h", "127.0.0.1", "-p",
                              str(s.idle_port), "--idle", str(n), "-t",
                              "60", "--timeout", "15"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        t0 = time.monotonic()
        line = ""
        while time.monotonic() - t0 < 50:
            line = p.stdout.readline()
            if not line or line.startswith("idle:"):
                break
        m = re.match(r"idle: (\d+) sessions open", line)
        held = int(m.group(1)) if m else 0
        time.sleep(1)
        after = pss_kib(s.pids())
        p.terminate()
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
        if held < n * 0.9:
            # A server that refused most of them (Postfix's process
            # limit) has no per-session figure at this count.
            figs[s.name] = {"failed": "held %d of %s" % (
                held, "{:,}".format(n)), "value": None}
        else:
            figs[s.name] = {"value": (after - before) / n}
        log("idle %d on %s: held %d, %s KiB -> %s KiB" % (n, s.name, held,
                                                          before, after))
    return {"scenario": "memory (PSS) per idle session, %s sessions"
            % "{:,}".format(n), "client": "-", "unit": "KiB",
            "figures": figs, "lower_is_better": True}


def versions(workdir):
    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True,
                                  timeout=30).stdout.strip()
        except OSError:
            return ""
    pf = out(["postconf", "-dh", "mail_version"])
    dc = out(["dovecot", "--version"]).split(" ")[0]
    debs = [os.path.join(dp, f) for dp, _, fs in os.walk(workdir)
            for f in fs if f.startswith("opensmtpd_") and f.endswith(".deb")]
    osd = out(["dpkg-deb", "-f", debs[0], "Version"]) if debs else "?"
    ssl = out(["openssl", "version"]).split(" ")[1:2]
    return "Postfix %s, Dovecot %s, OpenSMTPD %s, OpenSSL %s" % (
        pf or "?", dc or "?", osd, ssl[0] if ssl else "?")


def cert_kind(cert):
    text = subprocess.run(["openssl", "x509", "-noout", "-text", "-in",
                           cert], capture_output=True, text=True).stdout
    m = re.search(r"Public Key Algorithm: (\S+)", text)
    b = re.search(r"Public-Key: \((\d+) bit\)", text)
    kind = {"id-ecPublicKey": "ECDSA", "rsaEncryption": "RSA"}.get(
        m.group(1) if m else "", "?")
    return "%s %s-bit, self-signed" % (kind, b.group(1) if b else "?")


def best_units(a, b):
    """Each unit rate at its best of two measurements: other work on the
    machine can only lower a rate, so the higher one is nearer to what
    the machine allows."""
    return {k: {n: max(a[k][n], b[k][n]) for n in a[k]} for k in a}


def main():
    for tool in (SMTPLOAD, HASHRATE, TLSRATE, SMTPSINK, TLS_SHIM, AUTHCTL):
        if not os.access(tool, os.R_OK):
            sys.exit("bench: %s is missing (make bench builds it)" % tool)
    t_begin = time.monotonic()
    date = datetime.datetime.now()
    workdir = tempfile.mkdtemp(prefix="portcullis-bench-")
    os.chmod(workdir, 0o755)
    users, userfile, hashes = make_users(workdir)
    me = Portcullis(workdir, users, hashes)
    # Every server gets portcullis's certificate: the handshake costs
    # the same for all, and tlsrate measures that one.
    env = {"PEER_TLS_CERT": me.d.cert, "PEER_TLS_KEY": me.d.key}
    servers = [
        me,
        Peer("opensmtpd", "opensmtpd.sh", workdir, userfile, 3,
             {"starttls": 0, "smtps": 1, "noauth": 2,
              "plain": "refuses AUTH without TLS"},
             durable=False, env=dict(env, OPENSMTPD_TLS_SHIM=TLS_SHIM)),
        Peer("postfix+dovecot", "postfix.sh", workdir, userfile, 2,
             {"plain": 0, "starttls": 0, "noauth": 0, "smtps": 1},
             durable=True, env=env)]
    names = [s.name for s in servers]
    rows = scenarios(userfile)
    started = []
    try:
        # Unit costs before and after the rows; the best of each is kept.
        units0 = unit_costs(me.d.cert, me.d.key, hashes, users, me.d.dir)
        for s in servers:
            log("starting %s" % s.name)
            s.start()
            if s.ok:
                started.append(s)
        for s in servers:
            if not s.ok:
                for m in s.modes:
                    s.modes[m] = "did not start"
        # Memory first, on fresh processes: after the load runs, freed
        # heap would be reused and hide the cost of a session.
        memory = [idle_memory(started, n) for n in (1000, 10000)]
        run_rows(rows, servers)
        units = best_units(units0, unit_costs(me.d.cert, me.d.key, hashes,
                                              users, me.d.dir))
        sink_rates(rows, workdir)
        ver = versions(workdir)
        cert = cert_kind(me.d.cert)
        for s in started:
            s.stop()
        started = []
        log("oauth: cached and uncached logins, a hung provider")
        oauth_rows = oauth_bench.run(workdir, users, hashes)
        log("ldap: portcullis and Dovecot against one slapd, a hung one")
        ldap_rows = ldap_bench.run(workdir, users, hashes)
        log("node: spread over the workers, scaling, idle memory")
        node_rows = node_bench.run(workdir)
        log("fleet: AUTH with the node's own counters and with Redis")
        fleet_rows = fleet_bench.run(workdir)
        log("scram: SCRAM-SHA-256 and app-password logins")
        scram_rows = scram_bench.run(workdir)
        log("metrics: AUTH + STARTTLS c=16, metrics off and on")
        metrics_rows = metrics_bench.run(workdir)
        log("sql: PostgreSQL users, against Dovecot's sql passdb")
        sql_rows = sql_bench.run(workdir)
        log("keys: full STARTTLS handshakes through the key process")
        keys_rows = keys_bench.run(workdir)
    finally:
        for s in servers:
            try:
                s.stop()
            except Exception as e:  # keep stopping the others
                log("stopping %s: %s" % (s.name, e))
        shutil.rmtree(workdir, ignore_errors=True)

    rows += memory
    finish_rows(rows, names, units)
    auth_path = None
    ao = [r for r in rows if r["scenario"].startswith("AUTH only") and
          r["mode"] == "plain"][0]["figures"].get("portcullis", {})
    if ao.get("value") and not ao.get("failed"):
        raw = ao["raw"]
        auth_path = {"rate": ao["value"], "raw": units["hash"]["p"],
                     "pct_raw": 100.0 * ao["value"] / units["hash"]["p"],
                     "client_share": raw["client_cpu_s"] /
                     (raw["elapsed_s"] * CORES)}
    res = {"date": date.strftime("%Y-%m-%d %H:%M"), "machine": machine(),
           "cores": CORES, "versions": ver, "cert": cert,
           "seconds": DURATION, "note": os.environ.get("BENCH_NOTE", ""),
           "servers": names,
           "durable": {s.name: s.durable for s in servers},
           "units": units, "rows": rows, "auth_path": auth_path,
           "oauth": oauth_rows, "node": node_rows, "fleet": fleet_rows,
           "scram": scram_rows, "metrics": metrics_rows, "ldap": ldap_rows,
           "sql": sql_rows,
           "keys": keys_rows,
           "wall_s": round(time.monotonic() - t_begin)}
    os.makedirs(OUTDIR, exist_ok=True)
    stem = os.path.join(OUTDIR, "results-%s" % date.strftime(
        "%Y%m%d-%H%M%S"))
    with open(stem + ".json", "w") as f:
        json.dump(res, f, indent=1)
    print("\n## portcullis benchmark\n")
    table.print_tables(res)
    with open(stem + ".md", "w") as f:
        table.print_tables(res, out=f)
    print("\nRaw results: %s.json (the tables: %s.md; regenerate them "
          "with python3 tests/bench/table.py %s.json). %d s in all." %
          (stem, stem, stem, res["wall_s"]))


if __name__ == "__main__":
    main()
