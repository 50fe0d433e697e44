/*
 * live.c -- authctl's commands for the running daemon, over the
 * control socket (control-socket in portcullis.conf(5)):
 *
 *	test NAME	run the live chain for NAME's password
 *	stats		attempts per checker and result
 *	reload		reload the configuration, as SIGHUP does
 *	oauth keys [CHECKER]	the signing keys the checkers trust
 *	oauth refresh [CHECKER]	fetch them again now
 *	penalty list [ADDRESS|USER]	authd's penalties, this node's
 *					and the shared state's (Redis)
 *	penalty clear [ADDRESS|USER]	lift them, here and in Redis
 *
 * The socket is root's (mode 0600) and authd checks the caller's uid
 * again.  Every connection opens with CTL_HELLO both ways, so that an
 * authctl and an authd of different builds say so instead of
 * misreading each other.  A reply that does not come within the
 * timeout is an error, never a hang.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <err.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "authctl.h"
#include "bounds.h"
#include "imsg.h"
#include "proto.h"

#define LIVE_TIMEOUT_MS		30000
#define EXIT_TEMPFAIL		75	/* EX_TEMPFAIL */

static int	live_next(struct imsgbuf *, struct imsg *);
static int	live_send(struct imsgbuf *, uint32_t, const struct iovec *,
		    int);

/* Our version, then authd's, which must be the same. */
static int
live_hello(struct imsgbuf *ibuf)
{
	struct hello	 hello;
	struct imsg	 imsg;
	struct iovec	 iov;

	memset(&hello, 0, sizeof(hello));
	hello.version = PROTO_VERSION;
	iov.iov_base = &hello;
	iov.iov_len = sizeof(hello);
	if (live_send(ibuf, IMSG_CTL_HELLO, &iov, 1) == -1 ||
	    live_next(ibuf, &imsg) == -1)
		return -1;
	if (imsg_get_type(&imsg) != IMSG_CTL_HELLO ||
	    imsg_get_data(&imsg, &hello, sizeof(hello)) == -1)
		errx(EXIT_STORE, "control socket: unexpected reply to hello");
	imsg_free(&imsg);
	if (hello.version != PROTO_VERSION) {
		warnx("control socket: authd speaks protocol version %u, "
		    "authctl speaks %u: use the authctl of the running "
		    "portcullisd, or restart it", hello.version,
		    PROTO_VERSION);
		return -1;
	}
	return 0;
}

static int
live_connect(struct ctl *c, struct imsgbuf *ibuf)
{
	struct portcullis_conf	*conf;
	struct sockaddr_un	 sun;
	int			 fd;

	if ((conf = parse_config(c->conffile)) == NULL) {
		warnx("%s: cannot read the configuration", c->conffile);
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strlcpy(sun.sun_path, conf->control_socket, sizeof(sun.sun_path));
	config_free(conf);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		err(EXIT_STORE, "socket");
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		warn("control socket %s", sun.sun_path);
		close(fd);
		return -1;
	}
	if (imsgbuf_init(ibuf, fd) == -1)
		err(EXIT_STORE, "imsgbuf_init");
	if (live_hello(ibuf) == -1) {
		imsgbuf_clear(ibuf);
		close(fd);
		return -1;
	}
	return 0;
}

/* The next message, waiting at most the timeout. */
static int
live_next(struct imsgbuf *ibuf, struct imsg *imsg)
{
	struct pollfd	 pfd = { ibuf->fd, POLLIN, 0 };
	ssize_t		 n;

	for (;;) {
		if ((n = imsg_get(ibuf, imsg)) == -1)
			err(EXIT_STORE, "control socket: bad reply");
		if (n > 0)
			return 0;
		if (poll(&pfd, 1, LIVE_TIMEOUT_MS) <= 0) {
			warnx("control socket: no answer within %d s",
			    LIVE_TIMEOUT_MS / 1000);
			return -1;
		}
		switch (imsgbuf_read(ibuf)) {
		case -1:
			err(EXIT_STORE, "control socket");
		case 0:
			warnx("control socket: authd closed the connection");
			return -1;
		}
	}
}

static int
live_send(struct imsgbuf *ibuf, uint32_t type, const struct iovec *iov,
    int iovcnt)
{
	if (imsg_composev(ibuf, type, 0, 0, -1, iov, iovcnt) == -1 ||
	    imsgbuf_flush(ibuf) == -1) {
		warn("control socket");
		return -1;
	}
	return 0;
}

int
cmd_test(struct ctl *c, int argc, char *argv[])
{
	struct auth_request	 req;
	struct auth_verdict	 v;
	struct ibuf		 ib;
	char			 addrs[AUTH_ADDRS_BYTES + 1], *a;
	struct imsgbuf		 ibuf;
	struct imsg		 imsg;
	struct timespec		 t0, t1;
	struct iovec		 iov[2];
	char			 pw[PWBUF_LEN], cred[AUTH_CRED_MAX];
	size_t			 nlen, plen;
	int			 from_stdin = 0, rv;

	if (argc == 3 && strcmp(argv[2], "--password-stdin") == 0)
		from_stdin = 1;
	else if (argc != 2)
		usage();
	nlen = strlen(argv[1]);
	if (password_read(from_stdin, pw, sizeof(pw)) == -1)
		return EXIT_ERROR;
	plen = strlen(pw);
	if (nlen == 0 || 2 + nlen + plen > sizeof(cred)) {
		explicit_bzero(pw, sizeof(pw));
		warnx("name or password too long");
		return EXIT_ERROR;
	}
	cred[0] = '\0';
	memcpy(cred + 1, argv[1], nlen);
	cred[1 + nlen] = '\0';
	memcpy(cred + 2 + nlen, pw, plen);
	explicit_bzero(pw, sizeof(pw));

	memset(&req, 0, sizeof(req));
	req.req_id = 1;
	req.mechanism = SASL_PLAIN;
	req.cred_len = (uint32_t)(2 + nlen + plen);
	strlcpy(req.client, "authctl", sizeof(req.client));
	strlcpy(req.listener, "control", sizeof(req.listener));
	iov[0].iov_base = &req;
	iov[0].iov_len = sizeof(req);
	iov[1].iov_base = cred;
	iov[1].iov_len = req.cred_len;

	if (live_connect(c, &ibuf) == -1) {
		explicit_bzero(cred, sizeof(cred));
		return EXIT_STORE;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rv = live_send(&ibuf, IMSG_CTL_TEST, iov, 2);
	explicit_bzero(cred, sizeof(cred));
	if (rv == -1 || live_next(&ibuf, &imsg) == -1)
		return EXIT_STORE;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (imsg_get_type(&imsg) != IMSG_AUTH_VERDICT ||
	    imsg_get_ibuf(&imsg, &ib) == -1 ||
	    ibuf_get(&ib, &v, sizeof(v)) == -1 ||
	    ibuf_size(&ib) != v.addrs_len || v.addrs_len > AUTH_ADDRS_BYTES ||
	    ibuf_get(&ib, addrs, v.addrs_len) == -1)
		errx(EXIT_STORE, "control socket: unexpected reply");
	imsg_free(&imsg);
	v.user[sizeof(v.user) - 1] = '\0';
	v.checker[sizeof(v.checker) - 1] = '\0';
	addrs[v.addrs_len] = '\0';
	printf("%s: %s by checker %s in %ld ms\n",
	    v.result == AUTH_OK ? "ok" : v.result == AUTH_FAIL ? "fail" :
	    "tempfail", v.result == AUTH_OK ? v.user : argv[1],
	    v.checker[0] != '\0' ? v.checker : "none",
	    (t1.tv_sec - t0.tv_sec) * 1000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000000);
	/* The addresses the checker found, for the sender rule. */
	for (a = addrs; a < addrs + v.addrs_len; a += strlen(a) + 1)
		printf("  may send as %s\n", a);
	imsgbuf_clear(&ibuf);
	close(ibuf.fd);
	return v.result == AUTH_OK ? 0 : v.result == AUTH_FAIL ? EXIT_ERROR :
	    EXIT_TEMPFAIL;
}

/*
 * The next row of a listing that ends with IMSG_CTL_END: 1 with row
 * filled, 0 at the end (the connection is then closed), -1 when the
 * connection failed.  A reply of another kind ends authctl.
 */
static int
live_row(struct imsgbuf *ibuf, uint32_t type, void *row, size_t len)
{
	struct imsg	 imsg;
	uint32_t	 t;

	if (live_next(ibuf, &imsg) == -1)
		return -1;
	if ((t = imsg_get_type(&imsg)) == IMSG_CTL_END) {
		imsg_free(&imsg);
		imsgbuf_clear(ibuf);
		close(ibuf->fd);
		return 0;
	}
	if (t != type || imsg_get_data(&imsg, row, len) == -1)
		errx(EXIT_STORE, "control socket: unexpected reply");
	imsg_free(&imsg);
	return 1;
}

/*
 * 1: a checker's row; 2: a counter; 3: a checker's own line (per ldap
 * server...); 0: the end; -1: failed.
 */
static int
stats_row(struct imsgbuf *ibuf, struct ctl_stats *st, struct ctl_counter *c,
    struct ctl_stats_line *sl)
{
	struct imsg	 imsg;
	uint32_t	 t;

	if (live_next(ibuf, &imsg) == -1)
		return -1;
	t = imsg_get_type(&imsg);
	if (t == IMSG_CTL_END) {
		imsg_free(&imsg);
		imsgbuf_clear(ibuf);
		close(ibuf->fd);
		return 0;
	}
	if (t == IMSG_CTL_STATS_REPLY &&
	    imsg_get_data(&imsg, st, sizeof(*st)) == 0) {
		imsg_free(&imsg);
		return 1;
	}
	if (t == IMSG_CTL_COUNTER &&
	    imsg_get_data(&imsg, c, sizeof(*c)) == 0) {
		imsg_free(&imsg);
		return 2;
	}
	if (t == IMSG_CTL_STATS_LINE &&
	    imsg_get_data(&imsg, sl, sizeof(*sl)) == 0) {
		imsg_free(&imsg);
		return 3;
	}
	errx(EXIT_STORE, "control socket: unexpected reply");
}

int
cmd_stats(struct ctl *c, int argc, char *argv[])
{
	struct imsgbuf		 ibuf;
	struct ctl_stats	 st;
	struct ctl_counter	 ctr;
	struct ctl_stats_line	 sl;
	int			 n, counters = 0;

	(void)argv;
	if (argc != 1)
		usage();
	if (live_connect(c, &ibuf) == -1 ||
	    live_send(&ibuf, IMSG_CTL_STATS, NULL, 0) == -1)
		return EXIT_STORE;
	printf("%-24s %10s %10s %10s\n", "checker", "ok", "fail",
	    "tempfail");
	while ((n = stats_row(&ibuf, &st, &ctr, &sl)) > 0) {
		switch (n) {
		case 1:
			st.checker[sizeof(st.checker) - 1] = '\0';
			printf("%-24s %10llu %10llu %10llu\n", st.checker,
			    (unsigned long long)st.ok,
			    (unsigned long long)st.fail,
			    (unsigned long long)st.tempfail);
			break;
		case 3:
			/* what a checker says of itself, after the rows */
			sl.checker[sizeof(sl.checker) - 1] = '\0';
			sl.line[sizeof(sl.line) - 1] = '\0';
			printf("%s: %s\n", sl.checker, sl.line);
			break;
		default:
			/* then authd's counters (authd/fleet.h) */
			if (counters++ == 0)
				printf("\n");
			ctr.name[sizeof(ctr.name) - 1] = '\0';
			printf("%-32s %llu\n", ctr.name,
			    (unsigned long long)ctr.value);
		}
	}
	return n == -1 ? EXIT_STORE : 0;
}

int
cmd_reload(struct ctl *c, int argc, char *argv[])
{
	struct imsgbuf	 ibuf;
	struct imsg	 imsg;

	(void)argv;
	if (argc != 1)
		usage();
	if (live_connect(c, &ibuf) == -1 ||
	    live_send(&ibuf, IMSG_CTL_RELOAD, NULL, 0) == -1 ||
	    live_next(&ibuf, &imsg) == -1)
		return EXIT_STORE;
	if (imsg_get_type(&imsg) != IMSG_CTL_END)
		errx(EXIT_STORE, "control socket: unexpected reply");
	imsg_free(&imsg);
	imsgbuf_clear(&ibuf);
	close(ibuf.fd);
	printf("reload requested; the log says whether it took\n");
	return 0;
}

/* "2025-01-31 12:00:00Z", or "-" for none. */
static const char *
live_time(int64_t t, char *buf, size_t len)
{
	time_t		 tt = (time_t)t;
	struct tm	 tm;

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
		return "-";
	return buf;
}

/* Send a request for one checker or all; 0, or the exit status. */
static int
live_checker_request(struct ctl *c, struct imsgbuf *ibuf, uint32_t type,
    const char *name)
{
	struct ctl_checker	 which;
	struct iovec		 iov;

	memset(&which, 0, sizeof(which));
	if (name != NULL && strlcpy(which.checker, name,
	    sizeof(which.checker)) >= sizeof(which.checker)) {
		warnx("checker name too long");
		return EXIT_ERROR;
	}
	iov.iov_base = &which;
	iov.iov_len = sizeof(which);
	if (live_connect(c, ibuf) == -1 ||
	    live_send(ibuf, type, &iov, 1) == -1)
		return EXIT_STORE;
	return 0;
}

static int
oauth_keys(struct ctl *c, const char *name)
{
	struct imsgbuf	 ibuf;
	struct ctl_key	 k;
	char		 t1[32], t2[32], t3[32], kid[JWT_KID_MAX * 4];
	char		 who[256];
	int		 n, rv, rows = 0;

	if ((rv = live_checker_request(c, &ibuf, IMSG_CTL_KEYS, name)) != 0)
		return rv;
	while ((n = live_row(&ibuf, IMSG_CTL_KEY, &k, sizeof(k))) == 1) {
		k.checker[sizeof(k.checker) - 1] = '\0';
		k.kid[sizeof(k.kid) - 1] = '\0';
		k.alg[sizeof(k.alg) - 1] = '\0';
		if (rows++ == 0)
			printf("%-16s %-24s %-6s %-21s %-21s %s\n", "checker",
			    "kid", "alg", "fetched", "refresh", "expires");
		/* a kid is the provider's text */
		printf("%-16s %-24s %-6s %-21s %-21s %s\n",
		    safe_str(k.checker, who, sizeof(who)),
		    k.kid[0] != '\0' ? safe_str(k.kid, kid, sizeof(kid)) : "-",
		    k.alg, live_time(k.fetched, t1, sizeof(t1)),
		    live_time(k.refresh, t2, sizeof(t2)),
		    live_time(k.expires, t3, sizeof(t3)));
	}
	if (n == -1)
		return EXIT_STORE;
	if (rows == 0) {
		warnx("no keys%s%s", name != NULL ? " for checker " : "",
		    name != NULL ? safe_str(name, who, sizeof(who)) : "");
		return EXIT_ERROR;
	}
	return 0;
}

static int
oauth_refresh(struct ctl *c, const char *name)
{
	struct imsgbuf		 ibuf;
	struct ctl_refreshed	 r;
	char			 who[256], why[sizeof(r.error) * 4];
	int			 n, rv, rows = 0, failed = 0;

	if ((rv = live_checker_request(c, &ibuf, IMSG_CTL_REFRESH,
	    name)) != 0)
		return rv;
	while ((n = live_row(&ibuf, IMSG_CTL_REFRESHED, &r,
	    sizeof(r))) == 1) {
		rows++;
		r.checker[sizeof(r.checker) - 1] = '\0';
		r.error[sizeof(r.error) - 1] = '\0';
		safe_str(r.checker, who, sizeof(who));
		if (r.error[0] == '\0')
			printf("%s: %u keys\n", who, r.keys);
		else {
			failed = 1;
			printf("%s: failed: %s; %u keys kept, %u failed "
			    "fetches since start\n", who,
			    safe_str(r.error, why, sizeof(why)), r.keys,
			    r.failures);
		}
	}
	if (n == -1)
		return EXIT_STORE;
	if (rows == 0) {
		warnx("no oauth checker%s%s", name != NULL ? " named " : "",
		    name != NULL ? safe_str(name, who, sizeof(who)) : "");
		return EXIT_ERROR;
	}
	return failed ? EXIT_TEMPFAIL : 0;
}

/* authctl oauth keys | refresh [CHECKER] */
int
cmd_oauth(struct ctl *c, int argc, char *argv[])
{
	if (argc < 2 || argc > 3)
		usage();
	if (strcmp(argv[1], "keys") == 0)
		return oauth_keys(c, argc == 3 ? argv[2] : NULL);
	if (strcmp(argv[1], "refresh") == 0)
		return oauth_refresh(c, argc == 3 ? argv[2] : NULL);
	warnx("unknown oauth command \"%s\"", argv[1]);
	usage();
}

static const char *const penalty_kinds[] = {
	[PENALTY_KIND_ADDRESS] = "address",
	[PENALTY_KIND_ACCOUNT] = "account",
	[PENALTY_KIND_KNOWN] = "known",
	[PENALTY_KIND_REPEATS] = "repeats",
	[PENALTY_KIND_SENDING] = "sending",
};

static int
penalty_request(struct ctl *c, struct imsgbuf *ibuf, uint32_t type,
    const char *what)
{
	struct ctl_penalty	 p;
	struct iovec		 iov;

	memset(&p, 0, sizeof(p));
	if (what != NULL && strlcpy(p.what, what, sizeof(p.what)) >=
	    sizeof(p.what)) {
		warnx("address or user name too long");
		return EXIT_ERROR;
	}
	iov.iov_base = &p;
	iov.iov_len = sizeof(p);
	if (live_connect(c, ibuf) == -1 || live_send(ibuf, type, &iov, 1) ==
	    -1)
		return EXIT_STORE;
	return 0;
}

static const char *const penalty_where[] = {
	[PENALTY_WHERE_NODE] = "node",
	[PENALTY_WHERE_SHARED] = "shared",
};

static void
penalty_row(const struct ctl_penalty *p, int first)
{
	char	 t[32], shown[sizeof(p->what) * 4], delay[32];

	if (first)
		printf("%-6s %-8s %-40s %6s %-8s %-7s %s\n", "where", "kind",
		    "what", "count", "delay", "locked", "expires");
	snprintf(delay, sizeof(delay), "%ums", p->delay_ms);
	printf("%-6s %-8s %-40s %6u %-8s %-7s %s\n", penalty_where[p->where],
	    penalty_kinds[p->kind], safe_str(p->what, shown, sizeof(shown)),
	    p->count, p->kind == PENALTY_KIND_ADDRESS ? delay : "-",
	    p->kind == PENALTY_KIND_ACCOUNT || p->kind == PENALTY_KIND_SENDING ?
	    (p->locked ? "yes" : "no") : "-",
	    live_time(p->expires, t, sizeof(t)));
}

/*
 * This node's penalties, then the shared state's (Redis), each row
 * saying whose; a shared state that did not answer is said on stderr
 * and in the exit status (EXIT_STORE), after what this node knows.
 */
static int
penalty_list(struct ctl *c, const char *what)
{
	struct imsgbuf		 ibuf;
	struct ctl_penalty	 p;
	int			 n, rv, rows = 0, down = 0;

	if ((rv = penalty_request(c, &ibuf, IMSG_CTL_PENALTY_LIST,
	    what)) != 0)
		return rv;
	while ((n = live_row(&ibuf, IMSG_CTL_PENALTY, &p, sizeof(p))) == 1) {
		p.what[sizeof(p.what) - 1] = '\0';
		if (p.where == PENALTY_WHERE_DOWN) {
			down = 1;
			continue;
		}
		if (p.kind < PENALTY_KIND_ADDRESS ||
		    p.kind > PENALTY_KIND_SENDING ||
		    p.where > PENALTY_WHERE_SHARED)
			continue;
		penalty_row(&p, rows++ == 0);
	}
	if (n == -1)
		return EXIT_STORE;
	if (rows == 0)
		printf("no penalties\n");
	if (down) {
		warnx("the shared state (Redis) did not answer: this node's "
		    "penalties only");
		return EXIT_STORE;
	}
	return 0;
}

static int
penalty_clear(struct ctl *c, const char *what)
{
	struct imsgbuf		 ibuf;
	struct ctl_penalty	 p;
	long long		 node = -1, shared = -1;
	int			 n, rv, down = 0;

	if ((rv = penalty_request(c, &ibuf, IMSG_CTL_PENALTY_CLEAR,
	    what)) != 0)
		return rv;
	while ((n = live_row(&ibuf, IMSG_CTL_PENALTY, &p, sizeof(p))) == 1) {
		if (p.where == PENALTY_WHERE_NODE)
			node = p.count;
		else if (p.where == PENALTY_WHERE_SHARED)
			shared = p.count;
		else
			down = 1;
	}
	if (n == -1)
		return EXIT_STORE;
	printf("%lld entries cleared on this node", node < 0 ? 0 : node);
	if (shared >= 0)
		printf(", %lld keys in the shared state", shared);
	printf("\n");
	if (down) {
		warnx("the shared state (Redis) did not answer: cleared on "
		    "this node only");
		return EXIT_STORE;
	}
	return 0;
}

/* authctl penalty list | clear [ADDRESS|USER] */
int
cmd_penalty(struct ctl *c, int argc, char *argv[])
{
	if (argc < 2 || argc > 3)
		usage();
	if (strcmp(argv[1], "list") == 0)
		return penalty_list(c, argc == 3 ? argv[2] : NULL);
	if (strcmp(argv[1], "clear") == 0)
		return penalty_clear(c, argc == 3 ? argv[2] : NULL);
	warnx("unknown penalty command \"%s\"", argv[1]);
	usage();
}
