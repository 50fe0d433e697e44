"""
table.py -- the Performance tables from make bench's raw results.

    python3 tests/bench/table.py build/bench/results-DATE.json

prints, in markdown, what bench.py printed at the end of that run: the
date and machine, how each figure and limit is computed, the main table
and the OAuth table.  The README's Performance section is this output.
bench.py uses the same functions, so the two cannot drift apart.
"""

import json
import sys

HEADER = """\
Every figure comes from smtpload(1) in this run, loopback, {seconds} s per \
figure; the servers share the machine with the load generator. Same 50 \
users and sha512-crypt hashes (5000 rounds) everywhere, and the same TLS \
certificate ({cert}).

- **client**: *pipelining* sends MAIL, RCPT and DATA in one write when the \
server offers PIPELINING (portcullis and Postfix do, OpenSMTPD does not); \
*no pipelining* waits for each reply, as many real clients do.
- **portcullis / best peer**: against the best peer figure of that row. \
A figure from a run with any error is shown as "failed (why)" and takes \
no part in a ratio. **headline** is the ratio of the scenario with the \
client kind that is fairer to the peers: the smaller of the two ratios.
- **limit**: the most the machine allows for that row, from unit costs \
measured in this run: raw hash verifications/s (`hashrate`), full TLS \
handshakes/s with client and server both on this machine (`tlsrate`, \
this certificate, no resumption), fsyncs/s of 4 KiB files in the spool's \
file system, and the load generator's own ceiling (smtpload against \
`smtpsink`, a server that answers without doing anything, same client \
kind and concurrency). With p = min(c, cores) parallel sessions: at c=1 \
everything is serial, so the per-session times add up: limit = \
1 / (1/sink + 1/hash(1) + 1/tls(1) + 1/fsync(1)); at c>1 the CPU costs \
add up and the disk works beside them: limit = min(1 / (1/sink + \
1/hash(p) + 1/tls(p)), fsync(min(c, 16)) / fsyncs per unit). Only the \
costs a row has count (AUTH: one hash; TLS: one handshake; per message: \
one fsync, the least durable acceptance needs). **% of limit** is \
portcullis's figure over it. \
Each unit rate is the better of two measurements, before and after the \
rows: a busy machine only lowers them. A figure above 100% of its limit \
means the machine was busier while the unit costs were measured.
- **durable**: whether the server fsyncs the message before its 250. \
OpenSMTPD does not (its figures carry no fsync); portcullis and Postfix do.
- OpenSMTPD 6.8 (Debian 12, run with our TLS shim for OpenSSL 3) refuses \
AUTH without TLS, offers no PIPELINING (its two client rows are the same \
client for it), runs every session in one process and listens with a \
backlog of 5: under concurrency its connections wait for SYN \
retransmits, and a run where some exceed smtpload's 30 s timeout shows \
as failed. It holds few idle sessions for the same reason. Postfix runs \
at most 300 smtpd processes here (`default_process_limit`), one per \
session, so it cannot hold 1,000 idle sessions.
"""


def fmt(v):
    if v is None:
        return "n/a"
    if v >= 100:
        return "{:,.0f}".format(v)
    return "%.1f" % v if v >= 10 else "%.2f" % v


def cell(fig):
    if fig is None:
        return "n/a"
    if fig.get("failed"):
        return "failed (%s)" % fig["failed"]
    if fig.get("na"):
        return "n/a (%s)" % fig["na"]
    return fmt(fig.get("value"))


def print_tables(res, out=sys.stdout):
    w = lambda s="": print(s, file=out)  # noqa: E731
    names = res["servers"]
    w("Run %s. Machine: %s.  " % (res["date"], res["machine"]))
    w("Versions: %s.  " % res["versions"])
    if res.get("note"):
        w("Note: %s  " % res["note"])
    u = res["units"]
    w("Unit costs this run: sha512-crypt verifications/s %s (1 core) / %s "
      "(%d cores); TLS handshakes/s %s / %s; fsyncs/s %s (1 writer) / %s "
      "(16 writers)." % (fmt(u["hash"]["1"]), fmt(u["hash"]["p"]),
                         res["cores"], fmt(u["tls"]["1"]),
                         fmt(u["tls"]["p"]), fmt(u["fsync"]["1"]),
                         fmt(u["fsync"]["16"])))
    w()
    w(HEADER.format(seconds=res["seconds"], cert=res["cert"]))
    w("| scenario | client | unit | " + " | ".join(names) +
      " | limit | % of limit | portcullis / best peer | headline |")
    w("|---|---|---|" + "---|" * len(names) + "---|---|---|---|")
    w("| durable acceptance (fsync before 250) | | | " +
      " | ".join("yes" if res["durable"][n] else "**no**" for n in names) +
      " | | | | |")
    for r in res["rows"]:
        cells = [cell(r["figures"].get(n)) for n in names]
        lim = r.get("limit")
        pct = r.get("pct_of_limit")
        ratio = r.get("ratio")
        head = r.get("headline")
        w("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["scenario"], r["client"], r["unit"], " | ".join(cells),
            fmt(lim) if lim else "", "%.0f%%" % pct if pct else "",
            "%.2f" % ratio if ratio else "",
            "**%.2f**" % head if head else ""))
    if res.get("auth_path"):
        a = res["auth_path"]
        w()
        w("Auth path: %s auths/s through SMTP, imsg, the chain and the hash "
          "= **%.0f%%** of the raw hash rate on all cores (%s/s); the load "
          "generator itself used %.1f%% of the cores in that run." % (
              fmt(a["rate"]), a["pct_raw"], fmt(a["raw"]),
              100 * a["client_share"]))
    for key, title in (("oauth", "OAuth, password grant, provider "
                         "answering in 50 ms (portcullis only):"),
                       ("node", "One node: spread over the workers, "
                        "scaling with workers, idle memory (portcullis "
                        "only):"),
                       ("fleet", "Fleet state: penalties and limits in "
                        "the node's own counters or in Redis (portcullis "
                        "only):"),
                       ("scram", "SCRAM-SHA-256 and app passwords, whole "
                        "sessions on loopback, Python client (portcullis "
                        "only):"),
                       ("metrics", "The metrics endpoint: the AUTH + "
                        "STARTTLS row with metrics off and on, scraped "
                        "every second (portcullis only):"),
                       ("ldap", "LDAP: one slapd with {SSHA} users, each "
                        "login checked by the directory (a search and a "
                        "bind), portcullis's ldap checker beside "
                        "Postfix + Dovecot's LDAP passdb (auth_bind = "
                        "yes); local logins while the directory hangs:"),
                       ("sql", "PostgreSQL users, same database, no login "
                        "cache: portcullis's sql checker against Postfix + "
                        "Dovecot's sql passdb:"),
                       ("keys", "The key process: full STARTTLS "
                        "handshakes, each signing in the key process "
                        "(portcullis only):")):
        if not res.get(key):
            continue
        print_rows(title, res[key], out)


def print_rows(title, rows, out=sys.stdout):
    """A table of (what, value, unit) rows under its title."""
    w = lambda s="": print(s, file=out)  # noqa: E731
    w()
    w(title)
    w()
    w("| figure | value | unit |")
    w("|---|---|---|")
    for what, v, unit in rows:
        if isinstance(v, float):
            v = "%.2f" % v if v < 100 else "%.0f" % v
        elif v is None:
            v = "n/a"
        w("| %s | %s | %s |" % (what, v, unit))

def main():
    if len(sys.argv) != 2:
        sys.exit("usage: table.py results.json")
    with open(sys.argv[1]) as f:
        print_tables(json.load(f))


if __name__ == "__main__":
    main()
