/*
 * authctl.h -- what the files of authctl share.
 *
 * authctl.c parses the command line, finds the store and opens it,
 * reads passwords and gives the store to authd's user afterwards;
 * user.c has the user commands, import.c user import, cache.c the
 * login cache's.
 */
#ifndef PORTCULLIS_AUTHCTL_H
#define PORTCULLIS_AUTHCTL_H

#include <sys/types.h>

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "passwd.h"
#include "store.h"

/* Exit status; see authctl.8.  69 and 77 are sysexits(3)'s. */
#define EXIT_ERROR	1	/* no such user, user exists, bad input */
#define EXIT_USAGE	2
#define EXIT_STORE	69	/* EX_UNAVAILABLE: store missing, unreadable;
				   no login cache configured */
#define EXIT_NOPERM	77	/* EX_NOPERM: permission denied */

/* A buffer for a password: one octet more than PASSWD_MAX shows a
 * password that is too long, and one for the NUL. */
#define PWBUF_LEN	(PASSWD_MAX + 2)

/* ctl_open() modes */
#define CTL_READ	0
#define CTL_WRITE	1
#define CTL_CREATE	2	/* write, and create the store if missing */

struct ctl {
	const char	*conffile;	/* -f, or the default */
	int		 conf_given;	/* -f was given */
	const char	*storedir;	/* -d, else from the configuration */
	int		 cache;		/* the store is the login cache's */
	char		 dirbuf[PATH_MAX];
	char		 auth_user[CONF_USER_MAX];
	struct store	*st;
	int		 mode;		/* CTL_* of the open store */
	uint32_t	 scram_iter;	/* the configuration's; 0: default */
};

/* A command or subcommand, as the tables of authctl.c, user.c and
   cache.c list them; argv[0] is its name. */
struct ctl_cmd {
	const char	*name;
	int		(*run)(struct ctl *, int argc, char *argv[]);
};

/* authctl.c */
int		 ctl_dispatch(const char *group, const struct ctl_cmd *,
		    struct ctl *, int argc, char *argv[]);
int		 ctl_open(struct ctl *, int mode);
int		 ctl_close(struct ctl *, int status);
int		 ctl_list_end(struct ctl *, int rv, int nomem, const char *err,
		    const char *what);
int		 password_read(int from_stdin, char *buf, size_t buflen);
int		 scheme_check(const char *scheme);
void		 getopt_reset(void);
void		 badopt(const char *cmd, char *const argv[], int ch);
const char	*safe_str(const char *in, char *out, size_t outlen);
void		*rows_room(void *rows, size_t n, size_t *cap, size_t size);
__attribute__((__noreturn__)) void usage(void);

/* user.c */
int		 cmd_user(struct ctl *, int argc, char *argv[]);
int		 cmd_hash(struct ctl *, int argc, char *argv[]);
const char	*hash_scheme(const char *hash);
int		 name_check(const char *what, const char *name);
int		 name_problem(const char *name, int address, char *err,
		    size_t errlen);

int		 cmd_upgrade(struct ctl *, int argc, char *argv[]);

/* app.c */
int		 cmd_app_password(struct ctl *, int argc, char *argv[]);

/* import.c */
int		 cmd_import(struct ctl *, int argc, char *argv[]);

/* cache.c */
int		 cmd_cache(struct ctl *, int argc, char *argv[]);

/* live.c: the commands that talk to authd over the control socket */
int		 cmd_test(struct ctl *, int argc, char *argv[]);
int		 cmd_stats(struct ctl *, int argc, char *argv[]);
int		 cmd_reload(struct ctl *, int argc, char *argv[]);
int		 cmd_oauth(struct ctl *, int argc, char *argv[]);
int		 cmd_penalty(struct ctl *, int argc, char *argv[]);

#endif /* PORTCULLIS_AUTHCTL_H */
