/*
 * listen.c -- what master opens with root's rights before any child
 * exists: the listening sockets, the spool directory, and the checks
 * that the users and the chroot directory the children will need are
 * there and safe.  Errors name the address, port or path and the
 * system's reason.
 *
 * Where the kernel balances connections over a group of sockets bound
 * to one address with SO_REUSEPORT (Linux), every worker gets a
 * listening socket of its own, bound by master as the worker starts:
 * one socket shared by all workers lets whichever wakes first take
 * most connections.  master's own socket for each listener is then
 * bound but never listening: it holds the address across restarts and
 * reloads, and receives nothing.  A worker's socket lives only in
 * that worker (master closes its copy once sent), so a dead worker's
 * socket leaves the group with it: no connection is queued where
 * nobody accepts.  Elsewhere (OpenBSD) SO_REUSEPORT does not balance,
 * and every worker accepts on master's one listening socket.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "master.h"

#define LISTEN_BACKLOG	512

/*
 * Bind l's address; listen too unless only the address is held.
 * SO_REUSEPORT where sockets are per worker: the group of one
 * listener is its reservation and one socket per live worker.
 */
static int
listener_bind(struct listener *l, int do_listen)
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
#ifdef LISTEN_PER_WORKER
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) == -1) {
		log_warn("listen on %s port %d: SO_REUSEPORT",
		    listener_address(l), listener_port(l));
		close(fd);
		return -1;
	}
#endif
	if (bind(fd, (struct sockaddr *)&l->ss, l->sslen) == -1) {
		log_warn("listen on %s port %d: bind", listener_address(l),
		    listener_port(l));
		close(fd);
		return -1;
	}
	if (do_listen && listen(fd, LISTEN_BACKLOG) == -1) {
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
		if ((l->fd = listener_bind(l, !LISTEN_SHARED_RESERVED)) == -1)
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

/*
 * A worker's own listening sockets, in the order of conf's listeners
 * (-1 where master holds none).  The caller sends and closes them.
 * Without per-worker sockets every slot is -1 and the worker gets
 * master's shared one.
 */
int
listeners_worker(const struct portcullis_conf *conf, int *fds, size_t nfds)
{
	struct listener	*l;
	size_t		 i = 0;

	for (i = 0; i < nfds; i++)
		fds[i] = -1;
	i = 0;
	TAILQ_FOREACH(l, &conf->listeners, entry) {
		if (i == nfds)
			break;
#ifdef LISTEN_PER_WORKER
		if (l->fd != -1 && (fds[i] = listener_bind(l, 1)) == -1) {
			listeners_close(fds, i);
			return -1;
		}
#endif
		i++;
	}
	return 0;
}

void
listeners_close(int *fds, size_t nfds)
{
	for (size_t i = 0; i < nfds; i++) {
		if (fds[i] != -1)
			close(fds[i]);
		fds[i] = -1;
	}
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

/*
 * A worker writes tmp/<id>.<pid> (deliver_spool.c) and renames it into
 * new/<id> once it is durable.  A worker killed in between leaves the
 * file behind, which nobody would ever remove: on a full disk that
 * space would never come back.  master removes such files at start
 * (no worker lives yet), when the worker that wrote one dies, and
 * every SPOOL_SWEEP_SEC: a file whose owner is no live worker, or
 * that is older than any session can last (a pid reused, a file of
 * another program), goes, with a log line.
 */
#define SPOOL_SWEEP_LOG_MAX	20	/* lines per sweep; then a count */

static int
spool_owner_alive(pid_t pid)
{
	struct child	*c;

	TAILQ_FOREACH(c, &master->workers, entry)
		if (c->pid == pid)
			return 1;
	return 0;
}

/* The owner's pid from "<id>.<pid>"; -1 if the name has none. */
static pid_t
spool_tmp_owner(const char *name)
{
	const char	*dot, *errstr;
	long long	 pid;

	if ((dot = strchr(name, '.')) == NULL)
		return -1;
	pid = strtonum(dot + 1, 1, INT32_MAX, &errstr);
	return errstr != NULL ? -1 : (pid_t)pid;
}

/* Why name must go, or NULL.  only: sweep that owner's files alone. */
static const char *
spool_tmp_stale(int dfd, const char *name, int at_start, pid_t only)
{
	struct stat	 st;
	pid_t		 owner = spool_tmp_owner(name);
	time_t		 max_age;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISREG(st.st_mode))
		return NULL;
	if (only != -1)
		return owner == only ? "its worker died" : NULL;
	if (at_start)
		return "left by an earlier run";
	if (owner != -1 && !spool_owner_alive(owner))
		return "its worker is gone";
	max_age = 2 * (time_t)master->conf->timeout_session + 60;
	if (st.st_mtime < time(NULL) - max_age)
		return "older than any session";
	return NULL;
}

static void
spool_sweep_dir(int at_start, pid_t only)
{
	struct dirent	*de;
	DIR		*dir;
	const char	*why;
	unsigned int	 n = 0;
	int		 fd;

	if (master->spool_fd == -1)
		return;
	if ((fd = openat(master->spool_fd, "tmp", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1 || (dir = fdopendir(fd)) == NULL) {
		log_warn("spool: %s/tmp", master->conf->spool);
		if (fd != -1)
			close(fd);
		return;
	}
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.' ||
		    (why = spool_tmp_stale(fd, de->d_name, at_start,
		    only)) == NULL)
			continue;
		if (unlinkat(fd, de->d_name, 0) == -1) {
			if (errno != ENOENT)
				log_warn("spool: unlink tmp/%s", de->d_name);
			continue;
		}
		if (++n <= SPOOL_SWEEP_LOG_MAX)
			log_info("spool: removed tmp/%s: %s", de->d_name, why);
	}
	closedir(dir);
	if (n > SPOOL_SWEEP_LOG_MAX)
		log_info("spool: removed %u unfinished files from tmp/", n);
}

void
spool_sweep(int at_start)
{
	spool_sweep_dir(at_start, -1);
}

/* A worker died: what it was writing will never be finished. */
void
spool_sweep_owner(pid_t pid)
{
	if (master->conf->deliver == DELIVER_SPOOL)
		spool_sweep_dir(0, pid);
}

int
users_check(const struct portcullis_conf *conf)
{
	const char	*names[] = { conf->user, conf->auth_user,
	    conf->keys_user };
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

/*
 * The metrics endpoint's socket: one, listening, for portcullis-metrics
 * alone; bound at start and kept across reloads and its restarts.
 */
int
metrics_open(struct portcullis_conf *conf)
{
	struct listener	*l = &conf->metrics.listener;

	if (!conf->metrics.enabled)
		return -1;
	return listener_bind(l, 1);
}
