/*
 * cache.c -- authctl's login cache commands:
 *
 *	cache list [name]	the entries, of one user or all
 *	cache flush [name]	remove them
 *
 * The cache is an LMDB store that authd writes (store/store.h): the
 * store of the first cache checker of the configuration, or -d.  A
 * flush is one write transaction; a login that authd caches at the
 * same moment comes before or after it, never half.  What is secret
 * or close to it, a password entry's verifier, is never printed, and
 * of a token only the first octets of its hash, enough to tell two
 * apart.
 */

#include <sys/types.h>

#include <err.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authctl.h"

#define TOKEN_SHOWN	4	/* octets of a token's hash: 8 hex digits */

static const struct option no_opts[] = {
	{ NULL,			0,			NULL, 0 }
};

struct crow {
	int	 kind;
	char	*checker, *user, *canonical;
	char	 token[TOKEN_SHOWN * 2 + 1];
	int64_t	 created, expires;
};

struct clisting {
	struct crow	*rows;
	size_t		 nrows, cap;
	int		 nomem;
};

/* ISO 8601, UTC; any int64 the store holds, or "-". */
static const char *
fmt_utc(int64_t t, char *buf, size_t len)
{
	struct tm	 tm;
	time_t		 tt = (time_t)t;

	if ((int64_t)tt != t || gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		(void)strlcpy(buf, "-", len);
	return buf;
}

static char *
dup_or_dash(const char *s)
{
	return strdup(s[0] != '\0' ? s : "-");
}

static int
list_cb(const struct store_cache_entry *e, void *arg)
{
	struct clisting	*l = arg;
	struct crow	*r;
	size_t		 i;

	if ((r = rows_room(l->rows, l->nrows, &l->cap, sizeof(*r))) == NULL) {
		l->nomem = 1;
		return 1;
	}
	l->rows = r;
	r = &l->rows[l->nrows];
	memset(r, 0, sizeof(*r));
	r->kind = e->kind;
	r->created = e->created;
	r->expires = e->expires;
	(void)strlcpy(r->token, "-", sizeof(r->token));
	if (e->kind == STORE_CACHE_TOKEN)
		for (i = 0; i < TOKEN_SHOWN; i++)
			(void)snprintf(r->token + 2 * i, 3, "%02x",
			    e->token_hash[i]);
	if ((r->checker = dup_or_dash(e->checker)) == NULL ||
	    (r->user = dup_or_dash(e->user)) == NULL ||
	    (r->canonical = dup_or_dash(e->canonical)) == NULL) {
		free(r->checker);
		free(r->user);
		l->nomem = 1;
		return 1;
	}
	l->nrows++;
	return 0;
}

static int
width(int w, const char *s)
{
	return (int)strlen(s) > w ? (int)strlen(s) : w;
}

static void
print_rows(const struct clisting *l)
{
	const struct crow	*r;
	char			 t1[64], t2[64];
	time_t			 now = time(NULL);
	size_t			 i;
	int			 wc = (int)strlen("CHECKER");
	int			 wu = (int)strlen("USER");
	int			 wn = (int)strlen("CANONICAL");

	if (l->nrows == 0)
		return;
	for (i = 0; i < l->nrows; i++) {
		wc = width(wc, l->rows[i].checker);
		wu = width(wu, l->rows[i].user);
		wn = width(wn, l->rows[i].canonical);
	}
	printf("%-8s  %-*s  %-*s  %-*s  %-8s  %-20s  %-20s  %s\n", "KIND",
	    wc, "CHECKER", wu, "USER", wn, "CANONICAL", "TOKEN", "CREATED",
	    "EXPIRES", "STATUS");
	for (i = 0; i < l->nrows; i++) {
		r = &l->rows[i];
		/* An entry is not valid from expires on. */
		printf("%-8s  %-*s  %-*s  %-*s  %-8s  %-20s  %-20s  %s\n",
		    store_cache_kind_name(r->kind), wc, r->checker, wu, r->user, wn,
		    r->canonical, r->token, fmt_utc(r->created, t1, sizeof(t1)),
		    fmt_utc(r->expires, t2, sizeof(t2)),
		    (int64_t)now >= r->expires ? "expired" : "valid");
	}
}

/* The optional name operand of list and flush, checked; else usage. */
static int
opt_name(const char *cmd, int argc, char *argv[], const char **name)
{
	int	 ch;

	getopt_reset();
	while ((ch = getopt_long(argc, argv, ":", no_opts, NULL)) != -1)
		badopt(cmd, argv, ch);
	if (argc - optind > 1)
		usage();
	*name = argc - optind == 1 ? argv[optind] : NULL;
	if (*name != NULL && name_check("user name", *name) == -1)
		return EXIT_ERROR;
	return 0;
}

static int
cache_list(struct ctl *ctl, int argc, char *argv[])
{
	struct clisting	 l;
	const char	*name;
	char		 err[512];
	size_t		 i;
	int		 rv;

	if ((rv = opt_name("cache list", argc, argv, &name)) != 0)
		return rv;
	if ((rv = ctl_open(ctl, CTL_READ)) != 0)
		return ctl_close(ctl, rv);
	memset(&l, 0, sizeof(l));
	if (store_cache_list(ctl->st, name, list_cb, &l, err,
	    sizeof(err)) == -1)
		rv = EXIT_ERROR;
	print_rows(&l);
	for (i = 0; i < l.nrows; i++) {
		free(l.rows[i].checker);
		free(l.rows[i].user);
		free(l.rows[i].canonical);
	}
	free(l.rows);
	return ctl_list_end(ctl, rv, l.nomem, err, "the cache");
}

static int
cache_flush(struct ctl *ctl, int argc, char *argv[])
{
	const char	*name;
	char		 err[512];
	size_t		 n;
	int		 rv;

	if ((rv = opt_name("cache flush", argc, argv, &name)) != 0)
		return rv;
	if ((rv = ctl_open(ctl, CTL_WRITE)) != 0)
		return ctl_close(ctl, rv);
	if (store_cache_flush(ctl->st, name, &n, err, sizeof(err)) == -1) {
		warnx("%s", err);
		return ctl_close(ctl, EXIT_ERROR);
	}
	printf("%zu %s removed\n", n, n == 1 ? "entry" : "entries");
	if (fflush(stdout) == EOF) {
		warn("stdout");
		rv = EXIT_ERROR;
	}
	return ctl_close(ctl, rv);
}

static const struct ctl_cmd cache_commands[] = {
	{ "flush",	cache_flush },
	{ "list",	cache_list },
	{ NULL,		NULL }
};

int
cmd_cache(struct ctl *ctl, int argc, char *argv[])
{
	if (argc < 2)
		usage();
	argc--;
	argv++;
	ctl->cache = 1;
	return ctl_dispatch("cache", cache_commands, ctl, argc, argv);
}
