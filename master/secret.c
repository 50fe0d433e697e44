/*
 * secret.c -- master reads the oauth checkers' client secrets and the
 * sql checkers' database passwords, with root's rights, at start and
 * at every reload.
 *
 * The secret goes into the checker's configuration, which master sends
 * whole to authd; config_send() blanks it for workers, and
 * config_free() wipes it.  The file must be a regular file that nobody
 * but its owner and group can read: a secret readable by every local
 * user is no secret, and we would rather refuse to start than spread
 * it further.  Errors name the file, never what is in it.
 */

#include <sys/types.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "master.h"

/* The one line in path into dst (CONF_SECRET_MAX octets): 0 or -1. */
static int
secret_read(const struct checker_conf *c, const char *path, char *dst)
{
	struct stat		 st;
	char			 buf[CONF_SECRET_MAX + 1];
	ssize_t			 n;
	size_t			 len = 0;
	int			 fd, rv = -1;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) ==
	    -1) {
		log_warn("checker %s: %s", c->name, path);
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		log_warn("checker %s: %s", c->name, path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		log_warnx("checker %s: %s: not a regular file", c->name,
		    path);
		goto out;
	}
	if (st.st_mode & (S_IROTH | S_IWOTH)) {
		log_warnx("checker %s: %s: readable or writable by others "
		    "(mode %03o); chmod o-rw it", c->name, path,
		    (unsigned int)(st.st_mode & 0777));
		goto out;
	}
	while (len < sizeof(buf) &&
	    (n = read(fd, buf + len, sizeof(buf) - len)) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			log_warn("checker %s: %s", c->name, path);
			goto out;
		}
		len += (size_t)n;
	}
	/* One line; the newline an editor adds is not part of it. */
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (len == 0 || len >= CONF_SECRET_MAX) {
		log_warnx("checker %s: %s: %s", c->name, path,
		    len == 0 ? "empty" : "too long");
		goto out;
	}
	for (size_t i = 0; i < len; i++)
		if (iscntrl((unsigned char)buf[i])) {
			log_warnx("checker %s: %s: control characters in the "
			    "secret", c->name, path);
			goto out;
		}
	memcpy(dst, buf, len);
	dst[len] = '\0';
	rv = 0;
out:
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	return rv;
}

int
secrets_load(struct portcullis_conf *conf)
{
	struct checker_conf	*c;

	TAILQ_FOREACH(c, &conf->checkers, entry) {
		if (c->type == CHECKER_OAUTH && c->oauth.secret_file[0] != '\0' &&
		    secret_read(c, c->oauth.secret_file,
		    c->oauth.client_secret) == -1)
			return -1;
		/* The database's password, read as a client secret is. */
		if (c->type == CHECKER_SQL && c->sql != NULL &&
		    c->sql->password_file[0] != '\0' &&
		    secret_read(c, c->sql->password_file,
		    c->sql->password) == -1)
			return -1;
	}
	return 0;
}
