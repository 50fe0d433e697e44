/*
 * app.c -- authctl app-password: named, independently revocable
 * passwords of one account, one per device or script.
 *
 * A new app password is generated here (passwd_app_generate: 26
 * characters of 31, 128.8 bits), printed once and never stored: the
 * store keeps HMAC-SHA-256(the store's secret, user NUL password) and
 * the label.  Like the user commands, add and revoke read the user and
 * write it back in two transactions.  authd reads the store at every
 * login, so a revoked password fails at the next attempt: no cache
 * holds app passwords (the lmdb checker is not cacheable).
 */

#include <sys/types.h>

#include <err.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authctl.h"

#define OPT_EXPIRES	256
#define OPT_SEND_ONLY	257

static const struct option add_opts[] = {
	{ "expires",	required_argument,	NULL, OPT_EXPIRES },
	{ "send-only",	no_argument,		NULL, OPT_SEND_ONLY },
	{ NULL,		0,			NULL, 0 }
};

static const struct option no_opts[] = {
	{ NULL,		0,			NULL, 0 }
};

/*
 * --expires: "30d", "12h" or "90s" from now, or a UTC date
 * "YYYY-MM-DD" (its start) or "YYYY-MM-DDTHH:MM:SSZ".  0, or -1 after
 * a message.
 */
static int
parse_expires(const char *s, int64_t *t)
{
	struct tm	 tm;
	const char	*e;
	char		*end;
	long long	 n;

	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm)) != NULL &&
	    *end == '\0') {
		*t = (int64_t)timegm(&tm);
		goto check;
	}
	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(s, "%Y-%m-%d", &tm)) != NULL && *end == '\0') {
		*t = (int64_t)timegm(&tm);
		goto check;
	}
	n = strtoll(s, &end, 10);
	if (end != s && end[0] != '\0' && end[1] == '\0' &&
	    strchr("dhs", end[0]) != NULL) {
		e = n < 1 || n > 3650L * 86400 ? "out of range" : NULL;
		if (e == NULL) {
			*t = (int64_t)time(NULL) + n * (*end == 'd' ? 86400 :
			    *end == 'h' ? 3600 : 1);
			return 0;
		}
	}
	warnx("--expires %s: not Nd, Nh, Ns, YYYY-MM-DD or "
	    "YYYY-MM-DDTHH:MM:SSZ", s);
	return -1;
 check:
	if (*t <= (int64_t)time(NULL)) {
		warnx("--expires %s: that is past", s);
		return -1;
	}
	return 0;
}

static struct store_app *
app_find(struct store_user *u, const char *label)
{
	size_t	 i;

	for (i = 0; i < u->napps; i++)
		if (strcmp(u->apps[i].label, label) == 0)
			return &u->apps[i];
	return NULL;
}

/* Open the store and read the user: 0, or the exit status. */
static int
app_user(struct ctl *ctl, int mode, const char *name, struct store_user *u)
{
	char	 err[512];
	int	 rv;

	if ((rv = ctl_open(ctl, mode)) != 0)
		return rv;
	if (mode != CTL_READ && store_layout(ctl->st) < 2) {
		warnx("store %s has layout 1, which holds no app passwords: "
		    "run authctl upgrade", ctl->storedir);
		return EXIT_ERROR;
	}
	switch (store_user_get(ctl->st, name, u, err, sizeof(err))) {
	case 1:
		return 0;
	default:
		warnx("%s", err);
		explicit_bzero(u, sizeof(*u));
		return EXIT_ERROR;
	}
}

static int
app_put(struct ctl *ctl, struct store_user *u)
{
	char	 err[512];
	int	 rv = 0;

	if (store_user_put(ctl->st, u, STORE_REPLACE_ONLY, err,
	    sizeof(err)) == -1) {
		warnx("%s", err);
		rv = EXIT_ERROR;
	}
	explicit_bzero(u, sizeof(*u));
	return rv;
}

static int
app_add(struct ctl *ctl, int argc, char *argv[])
{
	struct store_user	 u;
	struct store_app	*a;
	uint8_t			 secret[STORE_SECRET_LEN];
	char			 pw[PASSWD_APP_LEN + 1], canon[PASSWD_APP_LEN + 1];
	char			 err[512];
	int64_t			 expires = 0;
	int			 ch, rv, flags = 0;

	getopt_reset();
	while ((ch = getopt_long(argc, argv, ":", add_opts, NULL)) != -1) {
		switch (ch) {
		case OPT_EXPIRES:
			if (parse_expires(optarg, &expires) == -1)
				return EXIT_ERROR;
			break;
		case OPT_SEND_ONLY:
			flags |= STORE_APP_SEND_ONLY;
			break;
		default:
			badopt("app-password add", argv, ch);
		}
	}
	if (argc - optind != 2)
		usage();
	argv += optind;
	if (name_check("user name", argv[0]) == -1)
		return EXIT_ERROR;
	if (store_app_label_check(argv[1], err, sizeof(err)) == -1) {
		warnx("label: %s", err);
		return EXIT_ERROR;
	}
	if ((rv = app_user(ctl, CTL_WRITE, argv[0], &u)) != 0)
		return ctl_close(ctl, rv);
	if (app_find(&u, argv[1]) != NULL || u.napps == STORE_APPS_MAX) {
		if (u.napps == STORE_APPS_MAX)
			warnx("user \"%s\" has %d app passwords already: "
			    "revoke one", u.name, STORE_APPS_MAX);
		else
			warnx("user \"%s\" has an app password \"%s\" "
			    "already: revoke it first", u.name, argv[1]);
		explicit_bzero(&u, sizeof(u));
		return ctl_close(ctl, EXIT_ERROR);
	}
	if (store_secret(ctl->st, secret, err, sizeof(err)) == -1 ||
	    passwd_app_generate(pw, sizeof(pw)) == -1 ||
	    passwd_app_canon(pw, strlen(pw), canon, sizeof(canon)) == -1) {
		warnx("%s", err[0] != '\0' ? err : "no randomness");
		explicit_bzero(&u, sizeof(u));
		return ctl_close(ctl, EXIT_ERROR);
	}
	a = &u.apps[u.napps++];
	memset(a, 0, sizeof(*a));
	(void)strlcpy(a->label, argv[1], sizeof(a->label));
	passwd_app_verifier(secret, sizeof(secret), u.name, canon,
	    strlen(canon), a->verifier);
	explicit_bzero(secret, sizeof(secret));
	explicit_bzero(canon, sizeof(canon));
	a->created = (int64_t)time(NULL);
	a->expires = expires;
	a->flags = flags;
	if ((rv = app_put(ctl, &u)) == 0) {
		/* Printed once: it is stored nowhere. */
		printf("%s\n", pw);
		if (fflush(stdout) == EOF) {
			warn("stdout");
			rv = EXIT_ERROR;
		}
	}
	explicit_bzero(pw, sizeof(pw));
	return ctl_close(ctl, rv);
}

static int
app_revoke(struct ctl *ctl, int argc, char *argv[])
{
	struct store_user	 u;
	struct store_app	*a;
	int			 ch, rv;

	getopt_reset();
	while ((ch = getopt_long(argc, argv, ":", no_opts, NULL)) != -1)
		badopt("app-password revoke", argv, ch);
	if (argc - optind != 2)
		usage();
	argv += optind;
	if ((rv = app_user(ctl, CTL_WRITE, argv[0], &u)) != 0)
		return ctl_close(ctl, rv);
	if ((a = app_find(&u, argv[1])) == NULL) {
		warnx("user \"%s\" has no app password \"%s\"", u.name,
		    argv[1]);
		explicit_bzero(&u, sizeof(u));
		return ctl_close(ctl, EXIT_ERROR);
	}
	/* Keep the order of the others: the listing shows it. */
	memmove(a, a + 1, (size_t)(&u.apps[u.napps] - (a + 1)) *
	    sizeof(*a));
	u.napps--;
	explicit_bzero(&u.apps[u.napps], sizeof(u.apps[u.napps]));
	return ctl_close(ctl, app_put(ctl, &u));
}

static const char *
fmt_time(int64_t t, char *buf, size_t len, const char *none)
{
	struct tm	 tm;
	time_t		 tt = (time_t)t;

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		(void)strlcpy(buf, none, len);
	return buf;
}

static int
app_list(struct ctl *ctl, int argc, char *argv[])
{
	struct store_user	 u;
	const struct store_app	*a;
	char			 t1[32], t2[32], t3[32];
	size_t			 i;
	int			 ch, rv;

	getopt_reset();
	while ((ch = getopt_long(argc, argv, ":", no_opts, NULL)) != -1)
		badopt("app-password list", argv, ch);
	if (argc - optind != 1)
		usage();
	argv += optind;
	if ((rv = app_user(ctl, CTL_READ, argv[0], &u)) != 0)
		return ctl_close(ctl, rv);
	if (u.napps > 0)
		printf("%-*s  %-20s  %-20s  %-20s  %s\n", STORE_APP_LABEL_MAX,
		    "LABEL", "CREATED", "LAST-USED", "EXPIRES", "FLAGS");
	for (i = 0; i < u.napps; i++) {
		a = &u.apps[i];
		printf("%-*s  %-20s  %-20s  %-20s  %s\n", STORE_APP_LABEL_MAX,
		    a->label, fmt_time(a->created, t1, sizeof(t1), "-"),
		    fmt_time(a->last_used, t2, sizeof(t2), "never"),
		    fmt_time(a->expires, t3, sizeof(t3), "never"),
		    (a->flags & STORE_APP_SEND_ONLY) ? "send-only" : "-");
	}
	explicit_bzero(&u, sizeof(u));
	return ctl_list_end(ctl, 0, 0, "", "the app passwords");
}

static const struct ctl_cmd app_commands[] = {
	{ "add",	app_add },
	{ "list",	app_list },
	{ "revoke",	app_revoke },
	{ NULL,		NULL }
};

int
cmd_app_password(struct ctl *ctl, int argc, char *argv[])
{
	if (argc < 2)
		usage();
	return ctl_dispatch("app-password", app_commands, ctl, argc - 1,
	    argv + 1);
}
