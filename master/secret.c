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
 * it further.  Errors name the file, never what is in it.  The
 * metrics endpoint's bearer token is read the same way, into the
 * struct that only portcullis-metrics receives, and so is Redis's
 * password (state redis ... password-file), which only authd gets.
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
#include "proto.h"

/*
 * One line of secret from path into dst (dstsize with the NUL); who
 * names its user in errors ("checker NAME", "metrics").
 */
static int
secret_file_read(const char *who, const char *path, char *dst,
    size_t dstsize)
{
	struct stat		 st;
	char			 buf[CONF_SECRET_MAX + 1];
	ssize_t			 n;
	size_t			 len = 0;
	int			 fd, rv = -1;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		log_warn("%s: %s", who, path);
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		log_warn("%s: %s", who, path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		log_warnx("%s: %s: not a regular file", who, path);
		goto out;
	}
	if (st.st_mode & (S_IROTH | S_IWOTH)) {
		log_warnx("%s: %s: readable or writable by others "
		    "(mode %03o); chmod o-rw it", who, path,
		    (unsigned int)(st.st_mode & 0777));
		goto out;
	}
	while (len < sizeof(buf) &&
	    (n = read(fd, buf + len, sizeof(buf) - len)) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			log_warn("%s: %s", who, path);
			goto out;
		}
		len += (size_t)n;
	}
	/* One line; the newline an editor adds is not part of it. */
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (len == 0 || len >= dstsize || len >= CONF_SECRET_MAX) {
		log_warnx("%s: %s: %s", who, path, len == 0 ? "empty" :
		    "too long");
		goto out;
	}
	for (size_t i = 0; i < len; i++)
		if (iscntrl((unsigned char)buf[i])) {
			log_warnx("%s: %s: control characters in the "
			    "secret", who, path);
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

/* A checker's secret file (oauth's client secret, ldap's bind password). */
static int
secret_read(const struct checker_conf *c, const char *path, char *dst,
    size_t dstsize)
{
	char	 who[CONF_NAME_MAX + 16];

	(void)snprintf(who, sizeof(who), "checker %s", c->name);
	return secret_file_read(who, path, dst, dstsize);
}

/* metrics' bearer-token-file, into what master sends metrics alone. */
int
metrics_token_load(const struct portcullis_conf *conf,
    struct metrics_config *mc)
{
	explicit_bzero(mc->token, sizeof(mc->token));
	mc->has_token = 0;
	if (conf->metrics.token_file[0] == '\0')
		return 0;
	if (secret_file_read("metrics", conf->metrics.token_file, mc->token,
	    sizeof(mc->token)) == -1)
		return -1;
	mc->has_token = 1;
	return 0;
}

int
secrets_load(struct portcullis_conf *conf)
{
	struct checker_conf	*c;

	explicit_bzero(conf->state.password, sizeof(conf->state.password));
	if (conf->state.type == STATE_REDIS &&
	    conf->state.password_file[0] != '\0' &&
	    secret_file_read("state redis", conf->state.password_file,
	    conf->state.password, sizeof(conf->state.password)) == -1)
		return -1;
	TAILQ_FOREACH(c, &conf->checkers, entry) {
		if (c->type == CHECKER_OAUTH && c->oauth.secret_file[0] != '\0' &&
		    secret_read(c, c->oauth.secret_file, c->oauth.client_secret,
		    sizeof(c->oauth.client_secret)) == -1)
			return -1;
		if (c->type == CHECKER_LDAP &&
		    c->ldap.bind_password_file[0] != '\0' &&
		    secret_read(c, c->ldap.bind_password_file,
		    c->ldap.bind_password, sizeof(c->ldap.bind_password)) == -1)
			return -1;
		/* The database's password, read as a client secret is. */
		if (c->type == CHECKER_SQL && c->sql != NULL &&
		    c->sql->password_file[0] != '\0' &&
		    secret_read(c, c->sql->password_file, c->sql->password,
		    sizeof(c->sql->password)) == -1)
			return -1;
	}
	return 0;
}
