/*
 * authctl.c -- the administrator's tool for portcullis.
 *
 * User management works on the LMDB store directly (LMDB is
 * multi-process safe: authd sees a committed change at its next
 * lookup, without a reload).  The live commands, which will talk to
 * authd over its control socket, are not there yet and say so.
 *
 * This file: the command line, finding the store (-d, or the first
 * lmdb checker of the configuration; for the cache commands, the first
 * cache checker), opening it, reading passwords,
 * and, when run as root, giving the store to authd's user afterwards
 * so that authd can still open what root created or wrote; or, for a
 * store that is authd's already, becoming authd's user to open it.
 */

#include <sys/types.h>
#include <sys/stat.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <readpassphrase.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authctl.h"
#include "util.h"
#include "log.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR	"/etc"
#endif
#define DEFAULT_CONF	SYSCONFDIR "/portcullis.conf"

static const char *const store_files[] = { "data.mdb", "lock.mdb" };

void
usage(void)
{
	fprintf(stderr,
	    "usage: authctl [-f file] [-d dir] command [argument ...]\n"
	    "       authctl user add [-s scheme] [--address addr ...] "
	    "[--password-stdin]\n"
	    "                [--scram-iterations n] [--no-password] name\n"
	    "       authctl user passwd [-s scheme] [--password-stdin] "
	    "[--scram-iterations n] name\n"
	    "       authctl user del | lock | unlock | show name\n"
	    "       authctl user list [-l] [--missing-scram]\n"
	    "       authctl user limits name [messages default | none | "
	    "n per duration]\n"
	    "                [recipients default | none | n per duration]\n"
	    "       authctl app-password add [--expires when] [--send-only] "
	    "name label\n"
	    "       authctl app-password list name\n"
	    "       authctl app-password revoke name label\n"
	    "       authctl upgrade\n"
	    "       authctl user import [--partial] [--replace] file\n"
	    "       authctl cache list | flush [name]\n"
	    "       authctl hash [-s scheme] [--password-stdin]\n"
	    "       authctl oauth keys | refresh [checker]\n"
	    "       authctl penalty list | clear [address | user]\n"
	    "       authctl test name [--password-stdin]\n"
	    "       authctl stats | reload\n");
	exit(EXIT_USAGE);
}

/* Make the next getopt_long() start afresh on another argv. */
void
getopt_reset(void)
{
#ifdef __GLIBC__
	optind = 0;
#else
	optreset = 1;
	optind = 1;
#endif
}

/*
 * Complain about the option of cmd (NULL: a global option) that
 * getopt_long() refused (opterr 0, and an optstring that starts with
 * ':'), then usage.
 */
void
badopt(const char *cmd, char *const argv[], int ch)
{
	const char	*opt = optind > 0 ? argv[optind - 1] : "?";
	const char	*sep = cmd != NULL ? ": " : "";

	if (cmd == NULL)
		cmd = "";
	if (ch == ':')
		warnx("%s%soption %s needs an argument", cmd, sep, opt);
	else if (optopt != 0)
		warnx("%s%sunknown option -%c", cmd, sep, optopt);
	else
		warnx("%s%sunknown option %s", cmd, sep, opt);
	usage();
}

/*
 * Room for row n of a listing that holds *cap rows of size octets:
 * rows itself, or a larger copy (*cap updated); NULL when memory ran
 * out, rows then unchanged.
 */
void *
rows_room(void *rows, size_t n, size_t *cap, size_t size)
{
	size_t	 ncap;
	void	*r;

	if (n < *cap)
		return rows;
	ncap = *cap == 0 ? 64 : *cap * 2;
	if ((r = reallocarray(rows, ncap, size)) == NULL)
		return NULL;
	*cap = ncap;
	return r;
}

/* A string that may be hostile (a user name from a file), for a message. */
const char *
safe_str(const char *in, char *out, size_t outlen)
{
	return escape_text(in, strlen(in), out, outlen);
}

/*
 * Find the store directory and authd's user.  -d names the directory;
 * without it, the first lmdb checker of the configuration does, or
 * for the cache commands the first cache checker.  The configuration
 * is read whenever it is needed for the directory, was named with -f,
 * or is where it is by default: it names auth-user.
 */
static int
ctl_setup(struct ctl *ctl)
{
	struct portcullis_conf	*conf;
	struct checker_conf	*cc;
	struct stat		 sb;
	enum checker_type	 type;

	type = ctl->cache ? CHECKER_CACHE : CHECKER_LMDB;
	(void)strlcpy(ctl->auth_user, PORTCULLIS_AUTH_USER,
	    sizeof(ctl->auth_user));
	if (ctl->storedir != NULL && !ctl->conf_given &&
	    stat(ctl->conffile, &sb) == -1 && errno == ENOENT)
		return 0;

	/* parse_config() logs every error, as FILE:LINE: message. */
	if ((conf = parse_config(ctl->conffile)) == NULL) {
		warnx("%s: cannot use this configuration%s", ctl->conffile,
		    ctl->storedir == NULL ? "; or name the store with -d" :
		    "");
		return EXIT_ERROR;
	}
	(void)strlcpy(ctl->auth_user, conf->auth_user,
	    sizeof(ctl->auth_user));
	ctl->scram_iter = (uint32_t)conf->scram_iterations;
	if (ctl->storedir == NULL) {
		TAILQ_FOREACH(cc, &conf->checkers, entry)
			if (cc->type == type)
				break;
		/* Without a cache, there is none to reach: as a missing one. */
		if (cc == NULL && ctl->cache) {
			warnx("%s: no cache checker in the configuration, so "
			    "no login cache: name its directory with -d",
			    ctl->conffile);
			config_free(conf);
			return EXIT_STORE;
		}
		if (cc == NULL) {
			warnx("%s: no lmdb checker in the configuration, so no "
			    "store: name one with -d", ctl->conffile);
			config_free(conf);
			return EXIT_ERROR;
		}
		if (cc->path[0] == '\0') {
			warnx("%s: checker \"%s\" names no directory: name it "
			    "with -d", ctl->conffile, cc->name);
			config_free(conf);
			return EXIT_STORE;
		}
		(void)strlcpy(ctl->dirbuf, cc->path, sizeof(ctl->dirbuf));
		ctl->storedir = ctl->dirbuf;
	}
	config_free(conf);
	return 0;
}

/*
 * Give one file of the store to uid:gid.  The directory may belong to
 * authd's user, who could have put a symbolic link or a hard link to
 * some other file there: open without following links, and change
 * only a regular file with one link, through its descriptor.
 */
static void
chown_file(int dfd, const char *dir, const char *name, uid_t uid,
    gid_t gid, int only_root)
{
	struct stat	 sb;
	int		 fd;

	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC);
	if (fd == -1) {
		if (errno != ENOENT)
			warn("warning: %s/%s", dir, name);
		return;
	}
	if (fstat(fd, &sb) == -1)
		warn("warning: %s/%s", dir, name);
	else if (!S_ISREG(sb.st_mode) || sb.st_nlink != 1)
		warnx("warning: %s/%s is not a regular file with one link: "
		    "its owner is left alone", dir, name);
	else if (only_root && sb.st_uid != 0)
		;
	else if ((sb.st_uid != uid || sb.st_gid != gid) &&
	    fchown(fd, uid, gid) == -1)
		warn("warning: %s/%s: cannot give it to uid %u", dir, name,
		    (unsigned)uid);
	close(fd);
}

/*
 * Run as root, authctl may have created the store, or its lock.mdb,
 * as root; authd, which runs as auth-user, could then no longer open
 * it.  After a write, give the directory and both files to auth-user;
 * after a read, only what belongs to root (a lock.mdb this run made).
 */
static void
store_chown(const struct ctl *ctl, int wrote)
{
	struct passwd	*pw;
	struct stat	 sb;
	size_t		 i;
	int		 dfd;

	if (geteuid() != 0)
		return;
	if ((dfd = open(ctl->storedir, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1) {
		if (errno != ENOENT)
			warn("warning: %s", ctl->storedir);
		return;
	}
	if ((pw = getpwnam(ctl->auth_user)) == NULL) {
		if (wrote)
			warnx("warning: auth-user \"%s\" does not exist: "
			    "store %s stays root's, and authd will not be "
			    "able to open it", ctl->auth_user, ctl->storedir);
		close(dfd);
		return;
	}
	if (fstat(dfd, &sb) == -1)
		warn("warning: %s", ctl->storedir);
	else if ((wrote || sb.st_uid == 0) &&
	    (sb.st_uid != pw->pw_uid || sb.st_gid != pw->pw_gid) &&
	    fchown(dfd, pw->pw_uid, pw->pw_gid) == -1)
		warn("warning: %s: cannot give it to %s", ctl->storedir,
		    ctl->auth_user);
	for (i = 0; i < sizeof(store_files) / sizeof(store_files[0]); i++)
		chown_file(dfd, ctl->storedir, store_files[i], pw->pw_uid,
		    pw->pw_gid, !wrote);
	close(dfd);
}

/*
 * Root does not work inside a store that belongs to somebody else:
 * that user (authd's, normally, and authd parses what workers send)
 * could have made data.mdb or lock.mdb a link to a file of root's,
 * and LMDB would open, even truncate, what the link points to.  So
 * when the directory exists and is not root's, root becomes its owner
 * for good before the store is opened, after it has given that owner
 * what root left in it.  A store that does not exist yet, or is
 * root's, is opened as root and given away afterwards.
 */
static int
become_owner(const struct ctl *ctl)
{
	struct passwd	*pw;
	struct stat	 sb;
	uid_t		 uid;
	gid_t		 gid;

	if (geteuid() != 0 || stat(ctl->storedir, &sb) == -1 ||
	    !S_ISDIR(sb.st_mode) || sb.st_uid == 0)
		return 0;
	uid = sb.st_uid;
	gid = sb.st_gid;
	if ((pw = getpwnam(ctl->auth_user)) == NULL || pw->pw_uid != uid)
		warnx("warning: store %s belongs to uid %u, not to auth-user "
		    "\"%s\"", ctl->storedir, (unsigned)uid, ctl->auth_user);
	else
		store_chown(ctl, 0);
	if (setgroups(1, &gid) == -1 || setresgid(gid, gid, gid) == -1 ||
	    setresuid(uid, uid, uid) == -1) {
		warn("cannot become uid %u, the owner of store %s",
		    (unsigned)uid, ctl->storedir);
		return EXIT_NOPERM;
	}
	if (setuid(0) != -1) {
		warnx("could still become root after switching to uid %u",
		    (unsigned)uid);
		return EXIT_NOPERM;
	}
	return 0;
}

/*
 * authd makes the login cache; authctl never does.  EXIT_STORE, after
 * a message, if it is not there; else 0, and store_open() tells the
 * rest (permissions, a directory that holds something else).
 */
static int
cache_missing(const struct ctl *ctl)
{
	struct stat	 sb;
	char		 path[PATH_MAX];

	(void)snprintf(path, sizeof(path), "%s/data.mdb", ctl->storedir);
	if (stat(path, &sb) == 0 || errno != ENOENT)
		return 0;
	warnx("login cache %s does not exist: authd creates it, for a cache "
	    "checker", ctl->storedir);
	return EXIT_STORE;
}

/*
 * Open the store for a command.  0, or the exit status after the
 * message: EXIT_NOPERM when permission is denied, EXIT_STORE when the
 * store is missing or cannot be opened, EXIT_ERROR for a
 * configuration that does not name one.
 */
int
ctl_open(struct ctl *ctl, int mode)
{
	char	 err[512];
	int	 flags, rv;

	if ((rv = ctl_setup(ctl)) != 0 || (rv = become_owner(ctl)) != 0)
		return rv;
	switch (mode) {
	case CTL_READ:
		flags = STORE_RDONLY;
		break;
	case CTL_WRITE:
		flags = 0;
		break;
	default:
		flags = STORE_CREATE;
		break;
	}
	ctl->mode = mode;
	/* The store's own word would be to make it with user add. */
	if (ctl->cache && mode != CTL_CREATE &&
	    (rv = cache_missing(ctl)) != 0)
		return rv;
	if ((ctl->st = store_open(ctl->storedir, flags, err,
	    sizeof(err))) == NULL) {
		warnx("%s", err);
		/* A creating open may have got halfway. */
		if (mode == CTL_CREATE)
			store_chown(ctl, 1);
		/* The store says so in its message, and only there. */
		if (strcasestr(err, "permission denied") != NULL)
			return EXIT_NOPERM;
		return EXIT_STORE;
	}
	return 0;
}

/* Close the store, then give it to auth-user; returns status. */
int
ctl_close(struct ctl *ctl, int status)
{
	if (ctl->st == NULL)
		return status;
	store_close(ctl->st);
	ctl->st = NULL;
	store_chown(ctl, ctl->mode != CTL_READ);
	return status;
}

/*
 * The end of a listing: say what went wrong (rv is 0 or the failure's
 * status, err its text), make sure the listing reached stdout, close.
 */
int
ctl_list_end(struct ctl *ctl, int rv, int nomem, const char *err,
    const char *what)
{
	if (nomem) {
		warnx("out of memory listing %s", what);
		rv = EXIT_ERROR;
	} else if (rv != 0)
		warnx("%s", err);
	if (fflush(stdout) == EOF) {
		warn("stdout");
		rv = EXIT_ERROR;
	}
	return ctl_close(ctl, rv);
}

/*
 * One line from standard input, read an octet at a time so that no
 * copy of the password stays in a stdio buffer, and nothing after the
 * line is taken from the caller.  The newline is not part of it.
 */
static int
password_stdin(char *buf, size_t buflen)
{
	size_t	 len = 0;
	ssize_t	 n;
	char	 c;

	for (;;) {
		n = read(STDIN_FILENO, &c, 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			warn("cannot read the password from standard input");
			goto fail;
		}
		if (n == 0 || c == '\n')
			break;
		if (c == '\0') {
			warnx("the password on standard input contains a "
			    "NUL octet");
			goto fail;
		}
		if (len + 1 >= buflen) {
			warnx("the password is longer than %d octets",
			    PASSWD_MAX);
			goto fail;
		}
		buf[len++] = c;
	}
	buf[len] = '\0';
	c = '\0';
	if (len == 0) {
		warnx("no password on standard input");
		return -1;
	}
	return 0;
 fail:
	c = '\0';
	explicit_bzero(buf, buflen);
	return -1;
}

/*
 * Read a new password into buf (PWBUF_LEN octets): from the terminal,
 * twice, or one line from standard input.  0, or -1 with the message
 * given and buf wiped.  The caller wipes buf after use.
 */
int
password_read(int from_stdin, char *buf, size_t buflen)
{
	char	 again[PWBUF_LEN];
	int	 rv = -1;

	if (from_stdin)
		return password_stdin(buf, buflen);
	if (readpassphrase("Password: ", buf, buflen,
	    RPP_REQUIRE_TTY) == NULL) {
		if (errno == ENOTTY || errno == ENXIO)
			warnx("no terminal to ask for the password on "
			    "(--password-stdin reads it from standard "
			    "input)");
		else
			warn("cannot read the password from the terminal");
		goto done;
	}
	if (strlen(buf) > PASSWD_MAX) {
		warnx("the password is longer than %d octets", PASSWD_MAX);
		goto done;
	}
	if (buf[0] == '\0') {
		warnx("empty password");
		goto done;
	}
	if (readpassphrase("Retype password: ", again, sizeof(again),
	    RPP_REQUIRE_TTY) == NULL) {
		warn("cannot read the password from the terminal");
		goto done;
	}
	if (strcmp(buf, again) != 0) {
		warnx("the passwords do not match");
		goto done;
	}
	rv = 0;
 done:
	explicit_bzero(again, sizeof(again));
	if (rv == -1)
		explicit_bzero(buf, buflen);
	return rv;
}

/* 0 if passwd_hash() can make hashes of scheme here; else a message. */
int
scheme_check(const char *scheme)
{
	static const char *const known[] = {
		"yescrypt", "bcrypt", "sha512", "argon2id"
	};
	size_t	 i;

	if (passwd_scheme_known(scheme))
		return 0;
	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(scheme, known[i]) == 0) {
			warnx("password scheme \"%s\" is not supported by this "
			    "system's libcrypt", scheme);
			return -1;
		}
	warnx("unknown password scheme \"%s\" (yescrypt, bcrypt, sha512, "
	    "argon2id)", scheme);
	return -1;
}

static const struct ctl_cmd commands[] = {
	{ "app-password", cmd_app_password },
	{ "cache",	cmd_cache },
	{ "hash",	cmd_hash },
	{ "oauth",	cmd_oauth },
	{ "penalty",	cmd_penalty },
	{ "reload",	cmd_reload },
	{ "stats",	cmd_stats },
	{ "test",	cmd_test },
	{ "upgrade",	cmd_upgrade },
	{ "user",	cmd_user },
	{ NULL,		NULL }
};

/*
 * Run the command of cmds that argv[0] names (group: "user" for the
 * subcommands of user, NULL at the top); usage() for an unknown one.
 */
int
ctl_dispatch(const char *group, const struct ctl_cmd *cmds, struct ctl *ctl,
    int argc, char *argv[])
{
	const struct ctl_cmd	*c;

	for (c = cmds; c->name != NULL; c++)
		if (strcmp(argv[0], c->name) == 0)
			return c->run(ctl, argc, argv);
	warnx("unknown command \"%s%s%s\"", group != NULL ? group : "",
	    group != NULL ? " " : "", argv[0]);
	usage();
}

int
main(int argc, char *argv[])
{
	struct ctl	 ctl;
	int		 ch;

	memset(&ctl, 0, sizeof(ctl));
	ctl.conffile = DEFAULT_CONF;
	/* parse_config() reports through the log: make that stderr. */
	log_init(1, 0);

	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+:d:f:", NULL, NULL)) != -1) {
		switch (ch) {
		case 'd':
			if (optarg[0] == '\0') {
				warnx("-d: empty directory name");
				usage();
			}
			ctl.storedir = optarg;
			break;
		case 'f':
			ctl.conffile = optarg;
			ctl.conf_given = 1;
			break;
		default:
			badopt(NULL, argv, ch);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0)
		usage();

	return ctl_dispatch(NULL, commands, &ctl, argc, argv);
}
