/*
 * import.c -- authctl user import: users and their hashes from a
 * Dovecot passwd-file or an Apache htpasswd file.
 *
 * A line is "user:password[:more fields]"; the fields after the
 * password (Dovecot's uid, gid, home, extra fields) are ignored.
 * Empty lines and lines that start with '#' are skipped.  The
 * password is a crypt(3) or argon2 string, bare or after one of
 * Dovecot's {CRYPT}, {SHA512-CRYPT}, {BLF-CRYPT} and {ARGON2ID}
 * prefixes.  Every hash is checked the way authd will use it: one
 * passwd_verify() of a dummy password, which must not say -1 (a
 * malformed hash, or a scheme this libcrypt cannot verify, such as
 * Apache's $apr1$).  The checks run on a few threads: each costs one
 * hash computation.
 *
 * All or nothing: every line is checked (syntax, name, hash,
 * duplicates in the file, users already in the store) before anything
 * is written, every bad line is reported as FILE:LINE: reason, and
 * without --partial nothing is written if any line is bad.
 *
 * The store API runs one transaction per call (store.h) and has none
 * for a batch, so the users are then written one transaction each.
 * Should a write fail part way (the disk is full, another authctl
 * added the same user meanwhile), the users this import wrote are
 * removed again and the ones it replaced are put back, so that without
 * --partial an import still does all or nothing; but another process
 * can see the users of an import appear one by one, and a change made
 * to one of them meanwhile by someone else is undone with it.
 */

#include <sys/types.h>

#include <err.h>
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "authctl.h"

#define VERIFY_THREADS_MAX	4	/* argon2 may want 1 GiB each */
#define DUMMY_PASSWORD		"authctl import: is this hash usable?"

#define OPT_PARTIAL		256
#define OPT_REPLACE		257

static const struct option import_opts[] = {
	{ "partial",	no_argument,	NULL, OPT_PARTIAL },
	{ "replace",	no_argument,	NULL, OPT_REPLACE },
	{ NULL,		0,		NULL, 0 }
};

struct entry {
	size_t			 line;
	char			*name;		/* normalised */
	char			*hash;
	char			*why;		/* NULL: good so far */
	struct store_user	*old;		/* --replace: as it was */
	int			 unusable;	/* set by the checkers */
	int			 written;
};

struct import {
	const char	*file;
	struct entry	*e;
	size_t		 n, cap;
	int		 partial, replace;
	atomic_size_t	 next;			/* for the checkers */
};

static void
setwhy(struct entry *e, const char *fmt, ...)
    __attribute__((__format__ (printf, 2, 3)));

static void
setwhy(struct entry *e, const char *fmt, ...)
{
	va_list	 ap;

	if (e->why != NULL)
		return;
	va_start(ap, fmt);
	if (vasprintf(&e->why, fmt, ap) == -1)
		err(EXIT_ERROR, NULL);
	va_end(ap);
}

/* Dovecot's password schemes we take, and what their hash starts with. */
static const struct {
	const char	*scheme;
	const char	*prefix[3];
} dovecot[] = {
	{ "CRYPT",		{ NULL } },		/* any crypt string */
	{ "SHA512-CRYPT",	{ "$6$" } },
	{ "BLF-CRYPT",		{ "$2a$", "$2b$", "$2y$" } },
	{ "ARGON2ID",		{ "$argon2id$" } },
};

/*
 * The hash in a password field, its "{SCHEME}" taken off and checked;
 * NULL with why set if it cannot be imported.
 */
static char *
field_hash(char *pw, struct entry *e)
{
	char	 safe[64];
	char	*close, *hash = pw;
	size_t	 i, k;
	int	 ok;

	if (pw[0] == '{') {
		if ((close = strchr(pw, '}')) == NULL) {
			setwhy(e, "the password has a '{' with no '}'");
			return NULL;
		}
		*close = '\0';
		hash = close + 1;
		for (i = 0; i < sizeof(dovecot) / sizeof(dovecot[0]); i++)
			if (strcasecmp(pw + 1, dovecot[i].scheme) == 0)
				break;
		if (i == sizeof(dovecot) / sizeof(dovecot[0])) {
			if (strcasecmp(pw + 1, "PLAIN") == 0 ||
			    strcasecmp(pw + 1, "CLEAR") == 0 ||
			    strcasecmp(pw + 1, "CLEARTEXT") == 0)
				setwhy(e, "{%s} is a plain-text password; "
				    "only hashes are imported", pw + 1);
			else
				setwhy(e, "password scheme {%s} is not "
				    "supported ({CRYPT}, {SHA512-CRYPT}, "
				    "{BLF-CRYPT}, {ARGON2ID} and bare crypt "
				    "strings are)",
				    safe_str(pw + 1, safe, sizeof(safe)));
			return NULL;
		}
		if (dovecot[i].prefix[0] != NULL) {
			ok = 0;
			for (k = 0; k < 3 && dovecot[i].prefix[k] != NULL;
			    k++)
				if (strncmp(hash, dovecot[i].prefix[k],
				    strlen(dovecot[i].prefix[k])) == 0)
					ok = 1;
			if (!ok) {
				setwhy(e, "a {%s} hash must start with %s",
				    dovecot[i].scheme, dovecot[i].prefix[0]);
				return NULL;
			}
		}
	}
	if (hash[0] == '\0') {
		setwhy(e, "no password hash");
		return NULL;
	}
	if (strncmp(hash, "$apr1$", 6) == 0) {
		setwhy(e, "$apr1$ (Apache MD5) hashes cannot be verified by "
		    "libcrypt: give this user a new password instead");
		return NULL;
	}
	if (strlen(hash) >= CONF_HASH_MAX) {
		setwhy(e, "the hash is longer than %d octets",
		    CONF_HASH_MAX - 1);
		return NULL;
	}
	for (i = 0; hash[i] != '\0'; i++)
		if ((unsigned char)hash[i] < 0x21 ||
		    (unsigned char)hash[i] > 0x7e) {
			setwhy(e, "the hash contains a space, a control "
			    "character or a non-ASCII octet");
			return NULL;
		}
	return hash;
}

/* Parse one line into a new entry; 0, or -1 if it is to be skipped. */
static int
parse_line(struct import *im, char *line, size_t len, size_t lineno)
{
	struct entry	*e;
	char		 norm[CONF_AUTH_NAME_MAX], safe[CONF_AUTH_NAME_MAX];
	char		*colon, *pw, *end, *hash;
	char		 why[64];
	size_t		 i;

	if (len > 0 && line[len - 1] == '\n')
		line[--len] = '\0';
	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	for (i = 0; i < len && (line[i] == ' ' || line[i] == '\t'); i++)
		;
	if (i == len || line[i] == '#')
		return -1;

	if (im->n == im->cap) {
		size_t	 ncap = im->cap == 0 ? 64 : im->cap * 2;

		if ((e = reallocarray(im->e, ncap, sizeof(*e))) == NULL)
			err(EXIT_ERROR, NULL);
		im->e = e;
		im->cap = ncap;
	}
	e = &im->e[im->n++];
	memset(e, 0, sizeof(*e));
	e->line = lineno;

	if (strlen(line) != len) {
		setwhy(e, "the line contains a NUL octet");
		return 0;
	}
	if ((colon = strchr(line, ':')) == NULL) {
		setwhy(e, "no ':' after the user name");
		return 0;
	}
	*colon = '\0';
	pw = colon + 1;
	if ((end = strchr(pw, ':')) != NULL)
		*end = '\0';
	if (name_problem(line, 0, why, sizeof(why)) == -1) {
		setwhy(e, "user name \"%s\" %s",
		    safe_str(line, safe, sizeof(safe)), why);
		return 0;
	}
	(void)store_name_normalize(line, norm, sizeof(norm));
	if ((e->name = strdup(norm)) == NULL)
		err(EXIT_ERROR, NULL);
	if ((hash = field_hash(pw, e)) == NULL)
		return 0;
	if ((e->hash = strdup(hash)) == NULL)
		err(EXIT_ERROR, NULL);
	return 0;
}

static int
read_file(struct import *im)
{
	FILE	*fp;
	char	*line = NULL;
	size_t	 linesize = 0, lineno = 0;
	ssize_t	 len;
	int	 rv = 0;

	if (strcmp(im->file, "-") == 0)
		fp = stdin;
	else if ((fp = fopen(im->file, "r")) == NULL) {
		warn("%s", im->file);
		return -1;
	}
	while ((len = getline(&line, &linesize, fp)) != -1)
		(void)parse_line(im, line, (size_t)len, ++lineno);
	if (ferror(fp)) {
		warn("%s", im->file);
		rv = -1;
	}
	free(line);
	if (fp != stdin)
		fclose(fp);
	return rv;
}

/* A checker thread: verify the dummy password against each hash. */
static void *
check_hashes(void *arg)
{
	struct import	*im = arg;
	struct entry	*e;
	size_t		 i;

	while ((i = atomic_fetch_add(&im->next, 1)) < im->n) {
		e = &im->e[i];
		if (e->why != NULL || e->hash == NULL)
			continue;
		if (passwd_verify(e->hash, DUMMY_PASSWORD,
		    strlen(DUMMY_PASSWORD)) == -1)
			e->unusable = 1;
	}
	return NULL;
}

static void
verify_all(struct import *im)
{
	pthread_t	 tid[VERIFY_THREADS_MAX];
	long		 ncpu;
	size_t		 i, n = 0, want;

	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	want = ncpu < 1 ? 1 : (size_t)ncpu;
	if (want > VERIFY_THREADS_MAX)
		want = VERIFY_THREADS_MAX;
	if (want > im->n)
		want = im->n;
	atomic_store(&im->next, 0);
	/* This thread checks too: one fewer to start. */
	for (i = 1; i < want; i++)
		if (pthread_create(&tid[n], NULL, check_hashes, im) == 0)
			n++;
	(void)check_hashes(im);
	for (i = 0; i < n; i++)
		(void)pthread_join(tid[i], NULL);
	for (i = 0; i < im->n; i++)
		if (im->e[i].unusable)
			setwhy(&im->e[i], "the hash cannot be verified on this "
			    "system: it is malformed, or of a scheme its "
			    "libcrypt does not support");
}

static struct import	*sort_im;

static int
byname(const void *a, const void *b)
{
	const struct entry	*x = &sort_im->e[*(const size_t *)a];
	const struct entry	*y = &sort_im->e[*(const size_t *)b];
	int			 c;

	if ((c = strcmp(x->name, y->name)) != 0)
		return c;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* A user twice in the file: the later lines are bad. */
static void
find_duplicates(struct import *im)
{
	size_t	*idx, i, k = 0, first;

	if ((idx = reallocarray(NULL, im->n + 1, sizeof(*idx))) == NULL)
		err(EXIT_ERROR, NULL);
	for (i = 0; i < im->n; i++)
		if (im->e[i].name != NULL)
			idx[k++] = i;
	sort_im = im;
	qsort(idx, k, sizeof(*idx), byname);
	for (i = 1, first = 0; i < k; i++) {
		if (strcmp(im->e[idx[i]].name, im->e[idx[first]].name) != 0) {
			first = i;
			continue;
		}
		setwhy(&im->e[idx[i]], "user \"%s\" is on line %zu already",
		    im->e[idx[i]].name, im->e[idx[first]].line);
	}
	free(idx);
}

/* Users already in the store: bad, or to be replaced. */
static void
find_existing(struct ctl *ctl, struct import *im)
{
	struct store_user	 u;
	struct entry		*e;
	char			 ebuf[512];
	size_t			 i;

	for (i = 0; i < im->n; i++) {
		e = &im->e[i];
		if (e->why != NULL)
			continue;
		switch (store_user_get(ctl->st, e->name, &u, ebuf,
		    sizeof(ebuf))) {
		case 0:
			break;
		case 1:
			if (!im->replace) {
				setwhy(e, "user \"%s\" exists (--replace "
				    "replaces its password)", e->name);
				break;
			}
			if ((e->old = malloc(sizeof(*e->old))) == NULL)
				err(EXIT_ERROR, NULL);
			memcpy(e->old, &u, sizeof(u));
			break;
		default:
			setwhy(e, "%s", ebuf);
		}
		explicit_bzero(&u, sizeof(u));
	}
}

/* Write one user; 0, or -1 with why set. */
static int
write_entry(struct ctl *ctl, struct entry *e)
{
	struct store_user	 u;
	char			 err[512];
	int			 flags;

	if (e->old != NULL) {
		memcpy(&u, e->old, sizeof(u));
		u.changed = 0;
		flags = STORE_REPLACE_ONLY;
	} else {
		memset(&u, 0, sizeof(u));
		(void)strlcpy(u.name, e->name, sizeof(u.name));
		flags = STORE_CREATE_ONLY;
	}
	(void)strlcpy(u.hash, e->hash, sizeof(u.hash));
	/*
	 * The SCRAM keys of the password being replaced must not outlive
	 * it, and a hash cannot give new ones.  App passwords are
	 * credentials of their own: kept.
	 */
	explicit_bzero(&u.scram, sizeof(u.scram));
	if (store_user_put(ctl->st, &u, flags, err, sizeof(err)) == -1) {
		setwhy(e, "%s", err);
		explicit_bzero(&u, sizeof(u));
		return -1;
	}
	explicit_bzero(&u, sizeof(u));
	e->written = 1;
	return 0;
}

/* Undo what this import wrote; the number of users not undone. */
static size_t
roll_back(struct ctl *ctl, struct import *im)
{
	struct entry	*e;
	char		 err[512];
	size_t		 i, left = 0;
	int		 rc;

	for (i = 0; i < im->n; i++) {
		e = &im->e[i];
		if (!e->written)
			continue;
		if (e->old != NULL)
			rc = store_user_put(ctl->st, e->old, 0, err,
			    sizeof(err));
		else
			rc = store_user_del(ctl->st, e->name, err,
			    sizeof(err));
		if (rc == -1) {
			warnx("%s:%zu: cannot undo: %s", im->file, e->line,
			    err);
			left++;
		}
	}
	return left;
}

static void
import_free(struct import *im)
{
	size_t	 i;

	for (i = 0; i < im->n; i++) {
		free(im->e[i].name);
		if (im->e[i].hash != NULL)
			freezero(im->e[i].hash, strlen(im->e[i].hash));
		free(im->e[i].why);
		if (im->e[i].old != NULL)
			freezero(im->e[i].old, sizeof(*im->e[i].old));
	}
	free(im->e);
}

/* The options and the file name of "user import" into im. */
static void
import_args(struct import *im, int argc, char *argv[])
{
	int	 ch;

	getopt_reset();
	while ((ch = getopt_long(argc, argv, ":", import_opts, NULL)) != -1) {
		switch (ch) {
		case OPT_PARTIAL:
			im->partial = 1;
			break;
		case OPT_REPLACE:
			im->replace = 1;
			break;
		default:
			badopt("user import", argv, ch);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 1)
		usage();
	im->file = argv[0];
}

/* Say what is wrong with each bad line: how many there are. */
static size_t
report_bad(const struct import *im)
{
	size_t	 i, nbad = 0;

	for (i = 0; i < im->n; i++)
		if (im->e[i].why != NULL) {
			warnx("%s:%zu: %s", im->file, im->e[i].line,
			    im->e[i].why);
			nbad++;
		}
	return nbad;
}

/*
 * Write the good entries, counting them into *nnew and *nrepl and the
 * ones that fail into *nbad.  Without --partial the first failure takes
 * back what was written: -1.  0 otherwise.
 */
static int
write_all(struct ctl *ctl, struct import *im, size_t *nnew, size_t *nrepl,
    size_t *nbad)
{
	struct entry	*e;
	size_t		 i, left;

	for (i = 0; i < im->n; i++) {
		e = &im->e[i];
		if (e->why != NULL)
			continue;
		if (write_entry(ctl, e) == 0) {
			if (e->old != NULL)
				(*nrepl)++;
			else
				(*nnew)++;
			continue;
		}
		warnx("%s:%zu: %s", im->file, e->line, e->why);
		(*nbad)++;
		if (im->partial)
			continue;
		left = roll_back(ctl, im);
		if (left == 0)
			warnx("%s: nothing imported: the users written "
			    "before line %zu were taken back", im->file,
			    e->line);
		else
			warnx("%s: %zu users of this import could not be "
			    "taken back", im->file, left);
		return -1;
	}
	return 0;
}

int
cmd_import(struct ctl *ctl, int argc, char *argv[])
{
	struct import	 im;
	size_t		 nbad, nnew = 0, nrepl = 0;
	int		 rv;

	memset(&im, 0, sizeof(im));
	import_args(&im, argc, argv);
	if (read_file(&im) == -1) {
		import_free(&im);
		return EXIT_ERROR;
	}
	verify_all(&im);
	find_duplicates(&im);
	if ((rv = ctl_open(ctl, CTL_CREATE)) != 0) {
		import_free(&im);
		return ctl_close(ctl, rv);
	}
	find_existing(ctl, &im);

	nbad = report_bad(&im);
	if (nbad > 0 && !im.partial) {
		warnx("%s: %zu bad line%s: nothing imported (see "
		    "--partial)", im.file, nbad, nbad == 1 ? "" : "s");
		import_free(&im);
		return ctl_close(ctl, EXIT_ERROR);
	}
	if (write_all(ctl, &im, &nnew, &nrepl, &nbad) == -1) {
		import_free(&im);
		return ctl_close(ctl, EXIT_ERROR);
	}
	printf("%s: %zu user%s imported", im.file, nnew + nrepl,
	    nnew + nrepl == 1 ? "" : "s");
	if (nrepl > 0)
		printf(", %zu of them replaced", nrepl);
	printf("\n");
	if (nbad > 0)
		warnx("%s: %zu bad line%s not imported", im.file, nbad,
		    nbad == 1 ? "" : "s");
	import_free(&im);
	if (fflush(stdout) == EOF) {
		warn("stdout");
		nbad++;
	}
	return ctl_close(ctl, nbad > 0 ? EXIT_ERROR : 0);
}
