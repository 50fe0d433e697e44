/*
 * user.c -- authctl's user commands and hash.
 *
 * Each command is one or two calls of the store, each its own short
 * transaction (store.h).  A command that reads a user and writes it
 * back (passwd, lock, unlock) is not atomic: a change another authctl
 * commits between the two is overwritten.  Names and addresses are
 * checked before a password is asked for, and a password never leaves
 * its buffer but to be hashed; the buffers are wiped after use.
 */

#include <sys/types.h>

#include <err.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "authctl.h"

#define OPT_ADDRESS		256
#define OPT_PASSWORD_STDIN	257
#define OPT_SCRAM_ITER		258
#define OPT_MISSING_SCRAM	259
#define OPT_NO_PASSWORD		260

static const struct option add_opts[] = {
	{ "address",		required_argument,	NULL, OPT_ADDRESS },
	{ "password-stdin",	no_argument,		NULL,
	    OPT_PASSWORD_STDIN },
	{ "scram-iterations",	required_argument,	NULL, OPT_SCRAM_ITER },
	{ "no-password",	no_argument,		NULL, OPT_NO_PASSWORD },
	{ NULL,			0,			NULL, 0 }
};

/* passwd takes what add takes, but --address; hash neither. */
static const struct option pw_opts[] = {
	{ "password-stdin",	no_argument,		NULL,
	    OPT_PASSWORD_STDIN },
	{ "scram-iterations",	required_argument,	NULL, OPT_SCRAM_ITER },
	{ NULL,			0,			NULL, 0 }
};

static const struct option hash_opts[] = {
	{ "password-stdin",	no_argument,		NULL,
	    OPT_PASSWORD_STDIN },
	{ NULL,			0,			NULL, 0 }
};

static const struct option list_opts[] = {
	{ "missing-scram",	no_argument,		NULL,
	    OPT_MISSING_SCRAM },
	{ NULL,			0,			NULL, 0 }
};

static void	limits_print(const struct store_user *);

static const struct option no_opts[] = {
	{ NULL,			0,			NULL, 0 }
};

/* The scheme of a stored hash, by its prefix; never the hash itself. */
const char *
hash_scheme(const char *hash)
{
	static const struct {
		const char	*prefix, *name;
	} schemes[] = {
		{ "$y$",	"yescrypt" },
		{ "$gy$",	"gost-yescrypt" },
		{ "$7$",	"scrypt" },
		{ "$2a$",	"bcrypt" },
		{ "$2b$",	"bcrypt" },
		{ "$2x$",	"bcrypt" },
		{ "$2y$",	"bcrypt" },
		{ "$6$",	"sha512" },
		{ "$5$",	"sha256" },
		{ "$1$",	"md5" },
		{ "$argon2id$",	"argon2id" },
		{ "$argon2i$",	"argon2i" },
		{ "$argon2d$",	"argon2d" },
	};
	size_t	 i;

	if (hash[0] == '\0')
		return "none (no password login)";
	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (strncmp(hash, schemes[i].prefix,
		    strlen(schemes[i].prefix)) == 0)
			return schemes[i].name;
	if (hash[0] == '_')
		return "bsdi-des";
	if (strlen(hash) == 13)
		return "des";
	return "unknown";
}

/*
 * 0 if name can be a user name (address 0) or a sending address (1);
 * else -1, and err says why in the store's own words.
 */
int
name_problem(const char *name, int address, char *err, size_t errlen)
{
	char	 norm[CONF_AUTH_NAME_MAX];

	if (address)
		return store_addr_normalize(name, norm, sizeof(norm), err,
		    errlen);
	return store_name_check(name, norm, sizeof(norm), err, errlen);
}

/* 0 if name is a good user name or address (what), else a message. */
int
name_check(const char *what, const char *name)
{
	char		 safe[CONF_AUTH_NAME_MAX];
	char		 why[64];

	if (name_problem(name, strcmp(what, "address") == 0, why,
	    sizeof(why)) == 0)
		return 0;
	warnx("%s \"%s\" %s", what, safe_str(name, safe, sizeof(safe)), why);
	return -1;
}

static const char *
fmt_time(int64_t t, char *buf, size_t len)
{
	struct tm	 tm;
	time_t		 tt = (time_t)t;

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		(void)strlcpy(buf, "-", len);
	return buf;
}

/*
 * Ask for a password (or read it from standard input) and hash it
 * into u->hash, and, with iter > 0, make its SCRAM keys too (else the
 * user has none: a hash alone cannot give them).  0, or -1 with a
 * message.
 */
static int
user_set_password(struct store_user *u, const char *scheme,
    int from_stdin, uint32_t iter)
{
	char	 pw[PWBUF_LEN], err[256], *h;
	int	 rv = -1;

	if (password_read(from_stdin, pw, sizeof(pw)) == -1)
		return -1;
	explicit_bzero(&u->scram, sizeof(u->scram));
	if (iter > 0 && passwd_scram_keys(pw, strlen(pw), iter, &u->scram,
	    err, sizeof(err)) == -1) {
		explicit_bzero(pw, sizeof(pw));
		warnx("%s", err);
		return -1;
	}
	h = passwd_hash(scheme, pw, strlen(pw), err, sizeof(err));
	explicit_bzero(pw, sizeof(pw));
	if (h == NULL) {
		warnx("%s", err);
		return -1;
	}
	if (strlcpy(u->hash, h, sizeof(u->hash)) >= sizeof(u->hash))
		warnx("the %s hash is longer than %zu octets", scheme,
		    sizeof(u->hash) - 1);
	else
		rv = 0;
	freezero(h, strlen(h));
	return rv;
}

/*
 * Look name up in the open store: 0 found (u filled), else the exit
 * status after a message ("no such user" among them).
 */
static int
user_get(struct ctl *ctl, const char *name, struct store_user *u)
{
	char	 err[512];

	switch (store_user_get(ctl->st, name, u, err, sizeof(err))) {
	case 1:
		return 0;
	case 0:
		warnx("%s", err);
		return EXIT_ERROR;
	default:
		warnx("%s", err);
		explicit_bzero(u, sizeof(*u));
		return EXIT_ERROR;
	}
}

static int
user_put(struct ctl *ctl, struct store_user *u, int flags)
{
	char	 err[512];
	int	 rv = 0;

	if (store_user_put(ctl->st, u, flags, err, sizeof(err)) == -1) {
		warnx("%s", err);
		rv = EXIT_ERROR;
	}
	explicit_bzero(u, sizeof(*u));
	return rv;
}

/* What add, passwd and hash take; only add takes --address. */
struct pw_args {
	const char	*scheme;
	int		 from_stdin;
	int		 no_password;	/* add: its main login is elsewhere */
	uint32_t	 iter;		/* SCRAM's */
	const char	*addrs[STORE_ADDRS_MAX];
	size_t		 naddrs;
};

/*
 * cmd's options into a, the operands left from argv[optind] on; a bad
 * option ends authctl (badopt), too many addresses is -1.
 */
static int
pw_getopt(const char *cmd, const struct option *opts, int argc,
    char *argv[], struct pw_args *a)
{
	int	 ch;

	const char	*e;

	memset(a, 0, sizeof(*a));
	a->scheme = PASSWD_DEFAULT_SCHEME;
	a->iter = 0;	/* the configuration's, or SCRAM_ITER_DEFAULT */
	getopt_reset();
	while ((ch = getopt_long(argc, argv, ":s:", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			a->scheme = optarg;
			break;
		case OPT_SCRAM_ITER:
			a->iter = (uint32_t)strtonum(optarg, SCRAM_ITER_MIN,
			    STORE_SCRAM_ITER_MAX, &e);
			if (e != NULL) {
				warnx("--scram-iterations %s: %s (%d..%d)",
				    optarg, e, SCRAM_ITER_MIN,
				    STORE_SCRAM_ITER_MAX);
				return -1;
			}
			break;
		case OPT_PASSWORD_STDIN:
			a->from_stdin = 1;
			break;
		case OPT_NO_PASSWORD:
			a->no_password = 1;
			break;
		case OPT_ADDRESS:
			if (a->naddrs == STORE_ADDRS_MAX) {
				warnx("more than %d addresses",
				    STORE_ADDRS_MAX);
				return -1;
			}
			a->addrs[a->naddrs++] = optarg;
			break;
		default:
			badopt(cmd, argv, ch);
		}
	}
	return 0;
}

/*
 * The SCRAM iteration count to make keys with: iter (--scram-
 * iterations), else scram-iterations of the configuration, else 4096;
 * or 0 (none) in a layout 1 store, which cannot hold them, after
 * saying so.
 */
static uint32_t
scram_iter(const struct ctl *ctl, uint32_t iter)
{
	if (store_layout(ctl->st) >= 2)
		return iter != 0 ? iter : ctl->scram_iter != 0 ?
		    ctl->scram_iter : SCRAM_ITER_DEFAULT;
	warnx("note: store %s has layout 1, which holds no SCRAM keys: "
	    "the password is set for PLAIN and LOGIN only; run authctl "
	    "upgrade, then set it again", ctl->storedir);
	return 0;
}

static int
user_add(struct ctl *ctl, int argc, char *argv[])
{
	struct store_user	 u;
	struct pw_args		 a;
	size_t			 i;
	char			 err[512];
	int			 rv;

	if (pw_getopt("user add", add_opts, argc, argv, &a) == -1)
		return EXIT_ERROR;
	argc -= optind;
	argv += optind;
	if (argc != 1)
		usage();
	if (name_check("user name", argv[0]) == -1)
		return EXIT_ERROR;
	for (i = 0; i < a.naddrs; i++)
		if (name_check("address", a.addrs[i]) == -1)
			return EXIT_ERROR;
	if (scheme_check(a.scheme) == -1)
		return EXIT_ERROR;

	if ((rv = ctl_open(ctl, CTL_CREATE)) != 0)
		return ctl_close(ctl, rv);
	switch (store_user_get(ctl->st, argv[0], &u, err, sizeof(err))) {
	case 0:
		break;
	case 1:
		warnx("user \"%s\" exists", u.name);
		explicit_bzero(&u, sizeof(u));
		return ctl_close(ctl, EXIT_ERROR);
	default:
		warnx("%s", err);
		return ctl_close(ctl, EXIT_ERROR);
	}
	memset(&u, 0, sizeof(u));
	(void)strlcpy(u.name, argv[0], sizeof(u.name));
	for (i = 0; i < a.naddrs; i++)
		(void)strlcpy(u.addrs[i], a.addrs[i], sizeof(u.addrs[i]));
	u.naddrs = a.naddrs;
	/* No password: app passwords (and tokens) only. */
	if (!a.no_password && user_set_password(&u, a.scheme, a.from_stdin,
	    scram_iter(ctl, a.iter)) == -1) {
		explicit_bzero(&u, sizeof(u));
		return ctl_close(ctl, EXIT_ERROR);
	}
	return ctl_close(ctl, user_put(ctl, &u, STORE_CREATE_ONLY));
}

static int
user_passwd(struct ctl *ctl, int argc, char *argv[])
{
	struct store_user	 u;
	struct pw_args		 a;
	int			 rv;

	if (pw_getopt("user passwd", pw_opts, argc, argv, &a) == -1)
		return EXIT_ERROR;
	argc -= optind;
	argv += optind;
	if (argc != 1)
		usage();
	if (name_check("user name", argv[0]) == -1 ||
	    scheme_check(a.scheme) == -1)
		return EXIT_ERROR;

	if ((rv = ctl_open(ctl, CTL_WRITE)) != 0)
		return ctl_close(ctl, rv);
	if ((rv = user_get(ctl, argv[0], &u)) != 0)
		return ctl_close(ctl, rv);
	if (user_set_password(&u, a.scheme, a.from_stdin,
	    scram_iter(ctl, a.iter)) == -1) {
		explicit_bzero(&u, sizeof(u));
		return ctl_close(ctl, EXIT_ERROR);
	}
	u.changed = 0;
	return ctl_close(ctl, user_put(ctl, &u, STORE_REPLACE_ONLY));
}

/* The one operand of a command that takes no option; else usage. */
static const char *
one_name(const char *cmd, int argc, char *argv[])
{
	int	 ch;

	getopt_reset();
	while ((ch = getopt_long(argc, argv, ":", no_opts, NULL)) != -1)
		badopt(cmd, argv, ch);
	if (argc - optind != 1)
		usage();
	return argv[optind];
}

static int
user_del(struct ctl *ctl, int argc, char *argv[])
{
	const char	*name = one_name("user del", argc, argv);
	char		 err[512];
	int		 rv;

	if ((rv = ctl_open(ctl, CTL_WRITE)) != 0)
		return ctl_close(ctl, rv);
	if (store_user_del(ctl->st, name, err, sizeof(err)) == -1) {
		warnx("%s", err);
		return ctl_close(ctl, EXIT_ERROR);
	}
	return ctl_close(ctl, 0);
}

static int
user_lock(struct ctl *ctl, int argc, char *argv[], int lock)
{
	struct store_user	 u;
	const char		*name;
	int			 rv;

	name = one_name(lock ? "user lock" : "user unlock", argc, argv);
	if ((rv = ctl_open(ctl, CTL_WRITE)) != 0)
		return ctl_close(ctl, rv);
	if ((rv = user_get(ctl, name, &u)) != 0)
		return ctl_close(ctl, rv);
	if (u.locked == lock) {
		warnx("user \"%s\" is already %s", u.name,
		    lock ? "locked" : "unlocked");
		explicit_bzero(&u, sizeof(u));
		return ctl_close(ctl, 0);
	}
	u.locked = lock;
	u.changed = 0;
	return ctl_close(ctl, user_put(ctl, &u, STORE_REPLACE_ONLY));
}

static int
user_show(struct ctl *ctl, int argc, char *argv[])
{
	struct store_user	 u;
	const char		*name = one_name("user show", argc, argv);
	char			 t[64];
	size_t			 i;
	int			 rv;

	if ((rv = ctl_open(ctl, CTL_READ)) != 0)
		return ctl_close(ctl, rv);
	if ((rv = user_get(ctl, name, &u)) != 0)
		return ctl_close(ctl, rv);
	printf("name: %s\n", u.name);
	printf("hash: %s\n", hash_scheme(u.hash));
	printf("locked: %s\n", u.locked ? "yes" : "no");
	printf("created: %s\n", fmt_time(u.created, t, sizeof(t)));
	printf("changed: %s\n", fmt_time(u.changed, t, sizeof(t)));
	if (u.naddrs == 0)
		printf("addresses: none\n");
	for (i = 0; i < u.naddrs; i++)
		printf("address: %s\n", u.addrs[i]);
	if (u.scram.saltlen > 0)
		printf("scram-sha-256: yes (%u iterations)\n", u.scram.iter);
	else
		printf("scram-sha-256: no\n");
	printf("app passwords: %zu\n", u.napps);
	limits_print(&u);
	explicit_bzero(&u, sizeof(u));
	return ctl_close(ctl, 0);
}

/* A duration as "90", "90s", "15m", "1h" or "1d": seconds, or -1. */
static long long
duration_parse(const char *s)
{
	static const struct { char unit; long long mult; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
	};
	const char	*errstr;
	char		 num[16];
	size_t		 len = strlen(s), i;
	long long	 mult = 1, n;

	if (len == 0 || len >= sizeof(num))
		return -1;
	memcpy(num, s, len + 1);
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (num[len - 1] == units[i].unit) {
			mult = units[i].mult;
			num[--len] = '\0';
			break;
		}
	n = strtonum(num, 1, STORE_LIMIT_WINDOW_MAX, &errstr);
	if (errstr != NULL || n > STORE_LIMIT_WINDOW_MAX / mult)
		return -1;
	return n * mult;
}

/* A window in the largest unit that divides it: "1h", "90m". */
static void
duration_format(uint32_t s, char *buf, size_t len)
{
	if (s % 86400 == 0)
		snprintf(buf, len, "%ud", s / 86400);
	else if (s % 3600 == 0)
		snprintf(buf, len, "%uh", s / 3600);
	else if (s % 60 == 0)
		snprintf(buf, len, "%um", s / 60);
	else
		snprintf(buf, len, "%us", s);
}

/* "default", "none" or "500 per 1h", as user limits takes it. */
static const char *
limit_format(const struct store_limit *l, char *buf, size_t len)
{
	char	 win[24];

	if (l->mode == STORE_LIMIT_NONE)
		return "none";
	if (l->mode != STORE_LIMIT_VALUE)
		return "default";
	duration_format(l->window, win, sizeof(win));
	snprintf(buf, len, "%u per %s", l->max, win);
	return buf;
}

static const char *const limit_words[STORE_LIMIT_KINDS] = {
	[STORE_LIMIT_MESSAGES] = "messages",
	[STORE_LIMIT_RECIPIENTS] = "recipients",
};

/*
 * KIND default | none | NUMBER per DURATION, from argv[*i] on, into
 * u->limits; *i moves past it.  0, or -1 after a message.
 */
static int
limit_parse(struct store_user *u, int argc, char *argv[], int *i)
{
	struct store_limit	 l;
	const char		*errstr;
	int			 k;
	long long		 w;

	for (k = 0; k < STORE_LIMIT_KINDS; k++)
		if (strcmp(argv[*i], limit_words[k]) == 0)
			break;
	if (k == STORE_LIMIT_KINDS) {
		warnx("user limits: unknown kind \"%s\": want messages or "
		    "recipients", argv[*i]);
		return -1;
	}
	memset(&l, 0, sizeof(l));
	if (*i + 1 >= argc) {
		warnx("user limits: %s: want default, none or NUMBER per "
		    "DURATION", argv[*i]);
		return -1;
	}
	if (strcmp(argv[*i + 1], "default") == 0 ||
	    strcmp(argv[*i + 1], "none") == 0) {
		l.mode = argv[*i + 1][0] == 'd' ? STORE_LIMIT_DEFAULT :
		    STORE_LIMIT_NONE;
		*i += 2;
		u->limits[k] = l;
		return 0;
	}
	if (*i + 3 >= argc || strcmp(argv[*i + 2], "per") != 0) {
		warnx("user limits: %s: want default, none or NUMBER per "
		    "DURATION", argv[*i]);
		return -1;
	}
	l.mode = STORE_LIMIT_VALUE;
	l.max = (uint32_t)strtonum(argv[*i + 1], 1, STORE_LIMIT_MAX, &errstr);
	if (errstr != NULL) {
		warnx("user limits: %s: the number must be between 1 and %d "
		    "(none: no limit)", argv[*i], STORE_LIMIT_MAX);
		return -1;
	}
	if ((w = duration_parse(argv[*i + 3])) == -1) {
		warnx("user limits: %s: \"%s\" is not a duration between 1s "
		    "and %dd (like 30m, 1h, 1d)", argv[*i], argv[*i + 3],
		    STORE_LIMIT_WINDOW_MAX / 86400);
		return -1;
	}
	l.window = (uint32_t)w;
	*i += 4;
	u->limits[k] = l;
	return 0;
}

static void
limits_print(const struct store_user *u)
{
	char	 buf[64];

	for (int k = 0; k < STORE_LIMIT_KINDS; k++)
		printf("limit %s: %s\n", limit_words[k],
		    limit_format(&u->limits[k], buf, sizeof(buf)));
}

/*
 * limits name [messages ...] [recipients ...]: set the user's own
 * sending limits (authd reads them at the next message: no reload),
 * or show them.  A kind not named keeps its value.
 */
static int
user_limits(struct ctl *ctl, int argc, char *argv[])
{
	struct store_user	 u, want;
	int			 i, rv;

	if (argc < 2 || argv[1][0] == '-')
		usage();
	memset(&want, 0, sizeof(want));
	for (int k = 0; k < STORE_LIMIT_KINDS; k++)
		want.limits[k].mode = -1;
	for (i = 2; i < argc; )
		if (limit_parse(&want, argc, argv, &i) == -1)
			return EXIT_ERROR;
	if ((rv = ctl_open(ctl, argc > 2 ? CTL_WRITE : CTL_READ)) != 0)
		return ctl_close(ctl, rv);
	if (argc > 2 && store_layout(ctl->st) < 3) {
		warnx("store %s has layout %d, which holds no sending limits: "
		    "run authctl upgrade", ctl->storedir,
		    store_layout(ctl->st));
		return ctl_close(ctl, EXIT_ERROR);
	}
	if ((rv = user_get(ctl, argv[1], &u)) != 0)
		return ctl_close(ctl, rv);
	if (argc == 2) {
		printf("name: %s\n", u.name);
		limits_print(&u);
		explicit_bzero(&u, sizeof(u));
		return ctl_close(ctl, 0);
	}
	for (int k = 0; k < STORE_LIMIT_KINDS; k++)
		if (want.limits[k].mode != -1)
			u.limits[k] = want.limits[k];
	u.changed = 0;
	return ctl_close(ctl, user_put(ctl, &u, STORE_REPLACE_ONLY));
}

struct listing {
	int		 longfmt;
	int		 missing_scram;	/* only those without SCRAM keys */
	struct row {
		char	*name;
		char	*addrs;
		int	 locked;
		int64_t	 created, changed;
		struct store_limit limits[STORE_LIMIT_KINDS];
	}		*rows;
	size_t		 nrows, cap;
	int		 nomem;
};

static int
list_cb(const struct store_user *u, void *arg)
{
	struct listing	*l = arg;
	struct row	*r;
	size_t		 i, len = 1;

	if (l->missing_scram && u->scram.saltlen > 0)
		return 0;
	if (!l->longfmt) {
		printf("%s\n", u->name);
		return 0;
	}
	if ((r = rows_room(l->rows, l->nrows, &l->cap, sizeof(*r))) == NULL) {
		l->nomem = 1;
		return 1;
	}
	l->rows = r;
	r = &l->rows[l->nrows];
	for (i = 0; i < u->naddrs; i++)
		len += strlen(u->addrs[i]) + 1;
	if ((r->name = strdup(u->name)) == NULL ||
	    (r->addrs = calloc(1, len)) == NULL) {
		free(r->name);
		l->nomem = 1;
		return 1;
	}
	for (i = 0; i < u->naddrs; i++) {
		if (i > 0)
			(void)strlcat(r->addrs, ",", len);
		(void)strlcat(r->addrs, u->addrs[i], len);
	}
	r->locked = u->locked;
	memcpy(r->limits, u->limits, sizeof(r->limits));
	r->created = u->created;
	r->changed = u->changed;
	l->nrows++;
	return 0;
}

static int
user_list(struct ctl *ctl, int argc, char *argv[])
{
	struct listing	 l;
	char		 err[512], t1[64], t2[64], m[64], r[64];
	size_t		 i;
	int		 ch, rv, w = (int)strlen("NAME");

	memset(&l, 0, sizeof(l));
	getopt_reset();
	while ((ch = getopt_long(argc, argv, ":l", list_opts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			l.longfmt = 1;
			break;
		case OPT_MISSING_SCRAM:
			l.missing_scram = 1;
			break;
		default:
			badopt("user list", argv, ch);
		}
	}
	if (argc != optind)
		usage();

	if ((rv = ctl_open(ctl, CTL_READ)) != 0)
		return ctl_close(ctl, rv);
	if (store_user_list(ctl->st, list_cb, &l, err, sizeof(err)) == -1)
		rv = EXIT_ERROR;
	for (i = 0; i < l.nrows; i++)
		if ((int)strlen(l.rows[i].name) > w)
			w = (int)strlen(l.rows[i].name);
	if (l.nrows > 0)
		printf("%-*s  %-6s  %-20s  %-20s  %-16s  %-16s  %s\n", w,
		    "NAME", "LOCKED", "CREATED", "CHANGED", "MESSAGES",
		    "RECIPIENTS", "ADDRESSES");
	for (i = 0; i < l.nrows; i++) {
		printf("%-*s  %-6s  %-20s  %-20s  %-16s  %-16s  %s\n", w,
		    l.rows[i].name, l.rows[i].locked ? "yes" : "no",
		    fmt_time(l.rows[i].created, t1, sizeof(t1)),
		    fmt_time(l.rows[i].changed, t2, sizeof(t2)),
		    limit_format(&l.rows[i].limits[STORE_LIMIT_MESSAGES], m,
		    sizeof(m)),
		    limit_format(&l.rows[i].limits[STORE_LIMIT_RECIPIENTS], r,
		    sizeof(r)),
		    l.rows[i].addrs[0] != '\0' ? l.rows[i].addrs : "-");
		free(l.rows[i].name);
		free(l.rows[i].addrs);
	}
	free(l.rows);
	return ctl_list_end(ctl, rv, l.nomem, err, "the users");
}

/*
 * upgrade: a layout 1 or 2 store to layout 3, in place, in one
 * transaction.  Explicit, not done on the first write: the
 * portcullis that made the store refuses it afterwards, so the
 * administrator decides when (after upgrading every authd).
 */
int
cmd_upgrade(struct ctl *ctl, int argc, char *argv[])
{
	char	 err[512];
	size_t	 n;
	int	 rv, was;

	(void)argv;
	if (argc != 1)
		usage();
	if ((rv = ctl_open(ctl, CTL_WRITE)) != 0)
		return ctl_close(ctl, rv);
	if (store_layout(ctl->st) >= STORE_LAYOUT) {
		printf("store %s has layout %d already\n", ctl->storedir,
		    store_layout(ctl->st));
		return ctl_close(ctl, 0);
	}
	was = store_layout(ctl->st);
	if (store_upgrade(ctl->st, &n, err, sizeof(err)) == -1) {
		warnx("%s", err);
		return ctl_close(ctl, EXIT_ERROR);
	}
	printf("store %s: layout %d -> %d, %zu users rewritten%s\n",
	    ctl->storedir, was, STORE_LAYOUT, n, was > 1 ? "" :
	    "; they have no SCRAM keys until their password is set again "
	    "(authctl user list --missing-scram)");
	return ctl_close(ctl, 0);
}

static int
user_lock_cmd(struct ctl *ctl, int argc, char *argv[])
{
	return user_lock(ctl, argc, argv, 1);
}

static int
user_unlock_cmd(struct ctl *ctl, int argc, char *argv[])
{
	return user_lock(ctl, argc, argv, 0);
}

static const struct ctl_cmd user_commands[] = {
	{ "add",	user_add },
	{ "del",	user_del },
	{ "import",	cmd_import },
	{ "limits",	user_limits },
	{ "list",	user_list },
	{ "lock",	user_lock_cmd },
	{ "passwd",	user_passwd },
	{ "show",	user_show },
	{ "unlock",	user_unlock_cmd },
	{ NULL,		NULL }
};

int
cmd_user(struct ctl *ctl, int argc, char *argv[])
{
	if (argc < 2)
		usage();
	argc--;
	argv++;
	return ctl_dispatch("user", user_commands, ctl, argc, argv);
}

/* hash [-s scheme] [--password-stdin]: like doveadm pw. */
int
cmd_hash(struct ctl *ctl, int argc, char *argv[])
{
	struct store_user	 u;
	struct pw_args		 a;
	int			 rv = 0;

	(void)ctl;	/* no store: hash only prints */
	(void)pw_getopt("hash", hash_opts, argc, argv, &a);
	if (argc != optind)
		usage();
	if (scheme_check(a.scheme) == -1)
		return EXIT_ERROR;
	memset(&u, 0, sizeof(u));
	if (user_set_password(&u, a.scheme, a.from_stdin, 0) == -1)
		return EXIT_ERROR;
	printf("%s\n", u.hash);
	explicit_bzero(&u, sizeof(u));
	if (fflush(stdout) == EOF) {
		warn("stdout");
		rv = EXIT_ERROR;
	}
	return rv;
}
