/*
 * listen.c -- what master opens with root's rights before any child
 * exists: the listening sockets, the spool directory, and the checks
 * that the users and the chroot directory the children will need are
 * there and safe.  Errors name the address, port or path and the
 * system's reason.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "master.h"

#define LISTEN_BACKLOG	512

static int
listener_bind(struct listener *l)
{
	int	 fd, on = 1;

	fd = socket(l->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd == -1) {
		log_warn("listen on %s port %d: socket", listener_address(l),
		    listener_port(l));
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1)
		log_warn("setsockopt SO_REUSEADDR");
	/* An IPv6 listener serves IPv6 only; IPv4 has its own line. */
	if (l->ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) == -1)
		log_warn("setsockopt IPV6_V6ONLY");
	if (bind(fd, (struct sockaddr *)&l->ss, l->sslen) == -1) {
		log_warn("listen on %s port %d: bind", listener_address(l),
		    listener_port(l));
		close(fd);
		return -1;
	}
	if (listen(fd, LISTEN_BACKLOG) == -1) {
		log_warn("listen on %s port %d: listen", listener_address(l),
		    listener_port(l));
		close(fd);
		return -1;
	}
	return fd;
}

static struct listener *
listener_find(struct portcullis_conf *conf, const struct listener *l)
{
	struct listener	*o;

	if (conf == NULL)
		return NULL;
	TAILQ_FOREACH(o, &conf->listeners, entry)
		if (o->fd != -1 && o->sslen == l->sslen &&
		    memcmp(&o->ss, &l->ss, l->sslen) == 0)
			return o;
	return NULL;
}

/*
 * Bind every listener of conf.  A socket already open in old (a
 * reload) is taken over instead of bound again.  On failure nothing
 * is taken from old and what was opened here is closed again.
 */
int
listeners_open(struct portcullis_conf *conf, struct portcullis_conf *old)
{
	struct listener	*l, *o;

	TAILQ_FOREACH(l, &conf->listeners, entry) {
		if (listener_find(old, l) != NULL)
			continue;
		if ((l->fd = listener_bind(l)) == -1)
			goto fail;
	}
	TAILQ_FOREACH(l, &conf->listeners, entry) {
		if ((o = listener_find(old, l)) != NULL && l->fd == -1) {
			l->fd = o->fd;
			o->fd = -1;
		}
	}
	return 0;
fail:
	TAILQ_FOREACH(l, &conf->listeners, entry) {
		if (l->fd != -1 && listener_find(old, l) == NULL) {
			close(l->fd);
		}
		l->fd = -1;
	}
	return -1;
}

static int
spool_mkdir(const char *path, mode_t mode, uid_t uid, gid_t gid)
{
	if (mkdir(path, mode) == -1 && errno != EEXIST) {
		log_warn("spool: mkdir %s", path);
		return -1;
	}
	if (master->privileged && chown(path, uid, gid) == -1) {
		log_warn("spool: chown %s", path);
		return -1;
	}
	return 0;
}

/*
 * The spool is root's directory with tmp/ and new/ owned by the
 * workers' user: a worker can write messages, never replace the
 * spool itself.  Returns the opened directory, or -1.
 */
int
spool_open(const struct portcullis_conf *conf)
{
	const char	*subdirs[] = { "tmp", "new" };
	struct passwd	*pw;
	char		 path[PATH_MAX];
	uid_t		 uid = geteuid();
	gid_t		 gid = getegid();
	int		 fd;

	if (master->privileged) {
		if ((pw = getpwnam(conf->user)) == NULL) {
			log_warnx("unknown user \"%s\"", conf->user);
			return -1;
		}
		uid = pw->pw_uid;
		gid = pw->pw_gid;
	}
	if (mkdir(conf->spool, 0755) == -1 && errno != EEXIST) {
		log_warn("spool: mkdir %s", conf->spool);
		return -1;
	}
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", conf->spool,
		    subdirs[i]) >= sizeof(path)) {
			log_warnx("spool: %s: name too long", conf->spool);
			return -1;
		}
		if (spool_mkdir(path, 0700, uid, gid) == -1)
			return -1;
	}
	if ((fd = open(conf->spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		log_warn("spool: open %s", conf->spool);
	return fd;
}

int
users_check(const struct portcullis_conf *conf)
{
	const char	*names[] = { conf->user, conf->auth_user };
	struct passwd	*pw;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if ((pw = getpwnam(names[i])) == NULL) {
			log_warnx("user \"%s\" does not exist: create it, or "
			    "name another in %s", names[i], master->conffile);
			return -1;
		}
		if (pw->pw_uid == 0) {
			log_warnx("user \"%s\" is root: the children must run "
			    "unprivileged", names[i]);
			return -1;
		}
	}
	return 0;
}

/*
 * The workers' root must exist, belong to root and be writable by
 * nobody else, or a worker could plant files for its successors.
 */
int
chroot_check(const char *dir)
{
	struct stat	 st;

	if (mkdir(dir, 0755) == -1 && errno != EEXIST) {
		log_warn("chroot %s", dir);
		return -1;
	}
	if (stat(dir, &st) == -1) {
		log_warn("chroot %s", dir);
		return -1;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & (S_IWGRP | S_IWOTH))) {
		log_warnx("chroot %s: must be a directory owned by root and "
		    "writable by nobody else", dir);
		return -1;
	}
	return 0;
}

/*
 * The LMDB stores belong to authd's user, mode 0700: a worker, or
 * anyone else, must not read the hashes.  Created when missing.
 */
int
stores_prepare(const struct portcullis_conf *conf)
{
	struct checker_conf	*c;
	struct passwd		*pw = NULL;

	if (master->privileged &&
	    (pw = getpwnam(conf->auth_user)) == NULL) {
		log_warnx("unknown user \"%s\"", conf->auth_user);
		return -1;
	}
	TAILQ_FOREACH(c, &conf->checkers, entry) {
		if (c->type != CHECKER_LMDB && c->type != CHECKER_CACHE)
			continue;
		if (mkdir(c->path, 0700) == -1 && errno != EEXIST) {
			log_warn("checker %s: mkdir %s", c->name, c->path);
			return -1;
		}
		if (pw != NULL && chown(c->path, pw->pw_uid, pw->pw_gid) == -1) {
			log_warn("checker %s: chown %s", c->name, c->path);
			return -1;
		}
	}
	return 0;
}

/*
 * authctl's control socket: bound by master as root, mode 0600, and
 * handed to authd, which checks each caller's uid as well.  A socket
 * file left by a dead daemon is replaced; one that answers is not.
 */
int
control_open(const struct portcullis_conf *conf)
{
	struct sockaddr_un	 sun;
	int			 fd, probe;
	mode_t			 old;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, conf->control_socket,
	    sizeof(sun.sun_path)) >= sizeof(sun.sun_path)) {
		log_warnx("control-socket %s: name too long",
		    conf->control_socket);
		return -1;
	}
	if ((probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		close(probe);
		log_warnx("control-socket %s: another daemon is using it",
		    conf->control_socket);
		return -1;
	}
	close(probe);
	(void)unlink(conf->control_socket);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1)
		return -1;
	old = umask(0077);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		log_warn("control-socket %s: bind", conf->control_socket);
		umask(old);
		close(fd);
		return -1;
	}
	umask(old);
	if (listen(fd, 16) == -1) {
		log_warn("control-socket %s: listen", conf->control_socket);
		close(fd);
		return -1;
	}
	return fd;
}
