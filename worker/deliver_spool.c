/*
 * deliver_spool.c -- delivery into a maildir-like spool.
 *
 * The worker is chrooted into an empty directory and never opens a
 * path: master opened the spool and passed its descriptor, and
 * deliver_init() opened tmp/ and new/ below it before the chroot.  A
 * message is written to tmp/<id>.<pid>, fsync'd, renamed to new/<id>,
 * and new/ is fsync'd; only then does the client get 250 with the id.
 * A worker killed half-way leaves at most a file in tmp/, never one in
 * new/, and the pid in its name tells master whose it was: master
 * removes it once that worker is gone (master/listen.c).
 *
 * A full file system is answered 452 4.3.1 (RFC 3463: mail system
 * full), at MAIL already while the spool is below its spool-min-free
 * floor (deliver_spool_room()), and after the final dot when a write
 * failed for want of space; the unfinished file is removed at once,
 * so what it took is free again for the next message.  The envelope travels in the same file, as header lines in
 * front of the message, so that one rename publishes both:
 *
 *	Return-Path: <sender>
 *	X-Portcullis-Envelope-To: <rcpt>	(one per recipient)
 *	X-Portcullis-Auth: user			(if authenticated)
 *	X-Portcullis-Client: address
 *	X-Portcullis-Session: 016llx session id
 *	X-Portcullis-Body: 8BITMIME		(if BODY=8BITMIME)
 *	X-Portcullis-SMTPUTF8: yes		(if SMTPUTF8)
 *	the message, as received (its Received header first)
 *
 * every line ending in CR LF.  The id is 16 lower-case hex digits from
 * arc4random; tmp/<id> is created with O_EXCL and new/<id> is checked
 * afterwards, so two workers cannot pick the same id.
 *
 * The done callback is called from inside deliver_end(): an fsync on a
 * local disk takes well under a millisecond, which the event loop
 * accepts.
 */

#include <sys/types.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "deliver_int.h"

#define SPOOL_ID_LEN	16
#define SPOOL_BUFSIZ	(32 * 1024)
#define SPOOL_ID_TRIES	8
#define SPOOL_TMP_LEN	(SPOOL_ID_LEN + 1 + 20)	/* <id>.<pid> */
#define SPOOL_ROOM_LOG_SEC 10	/* at most one "below the floor" line */

struct spool_delivery {
	struct delivery	 d;
	char		 id[SPOOL_ID_LEN + 1];
	char		 tmpname[SPOOL_TMP_LEN + 1];
	int		 fd;
	int		 error;		/* errno of the first failure */
	const char	*failed_op;	/* what failed */
	uint64_t	 octets;
	size_t		 buflen;
	char		 buf[SPOOL_BUFSIZ];
};

static pid_t	 spool_pid;	/* ours, in the names in tmp/ */

static int
spool_open_dir(const char *name)
{
	int	 fd;

	fd = openat(deliver_env.spool_fd, name,
	    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		log_warn("deliver: spool directory %s/%s",
		    deliver_env.conf->spool, name);
	return fd;
}

static void
spool_cleanup(void)
{
	if (deliver_env.tmp_fd != -1)
		close(deliver_env.tmp_fd);
	if (deliver_env.new_fd != -1)
		close(deliver_env.new_fd);
	deliver_env.tmp_fd = deliver_env.new_fd = -1;
}

static int
spool_init(void)
{
	spool_cleanup();
	if (deliver_env.spool_fd == -1) {
		log_warnx("deliver: spool delivery without a spool directory");
		return -1;
	}
	spool_pid = getpid();
	if ((deliver_env.tmp_fd = spool_open_dir("tmp")) == -1 ||
	    (deliver_env.new_fd = spool_open_dir("new")) == -1) {
		spool_cleanup();
		return -1;
	}
	return 0;
}

/* Note the first failure; later writes are dropped. */
static void
spool_fail(struct spool_delivery *s, const char *op, int error)
{
	if (s->error != 0)
		return;
	s->error = error != 0 ? error : EIO;
	s->failed_op = op;
}

static void
spool_write_fd(struct spool_delivery *s, const char *p, size_t len)
{
	ssize_t	 n;

	while (len > 0 && s->error == 0) {
		if ((n = write(s->fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			spool_fail(s, "write", errno);
			return;
		}
		if (n == 0) {
			spool_fail(s, "write", EIO);
			return;
		}
		p += n;
		len -= n;
	}
}

static void
spool_flush(struct spool_delivery *s)
{
	if (s->buflen > 0)
		spool_write_fd(s, s->buf, s->buflen);
	s->buflen = 0;
}

static void
spool_put(struct spool_delivery *s, const void *data, size_t len)
{
	if (s->error != 0)
		return;
	if (s->buflen + len > sizeof(s->buf)) {
		spool_flush(s);
		if (len >= sizeof(s->buf)) {
			spool_write_fd(s, data, len);
			return;
		}
	}
	memcpy(s->buf + s->buflen, data, len);
	s->buflen += len;
}

/*
 * One envelope header line.  The engine checked the addresses; control
 * characters are replaced all the same, since a CR or LF here would
 * forge header lines.  Bytes above 0x7f stay (SMTPUTF8 addresses).
 */
static void
spool_header(struct spool_delivery *s, const char *name, const char *lead,
    const char *value, const char *trail)
{
	char	 line[SMTP_PATH_MAX + 64];
	size_t	 n, i;

	n = strlcpy(line, name, sizeof(line));
	n += strlcpy(line + n, ": ", sizeof(line) - n);
	n += strlcpy(line + n, lead, sizeof(line) - n);
	for (i = 0; value[i] != '\0' && n < sizeof(line) - 8; i++) {
		unsigned char	 c = value[i];

		line[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	line[n] = '\0';
	n += strlcpy(line + n, trail, sizeof(line) - n);
	n += strlcpy(line + n, "\r\n", sizeof(line) - n);
	spool_put(s, line, n);
}

static void
spool_envelope(struct spool_delivery *s, const struct envelope *env)
{
	char	 sid[SPOOL_ID_LEN + 1];
	size_t	 i;

	spool_header(s, "Return-Path", "<", env->sender, ">");
	for (i = 0; i < env->nrcpts; i++)
		spool_header(s, "X-Portcullis-Envelope-To", "<",
		    env->rcpts[i], ">");
	if (env->auth_user[0] != '\0')
		spool_header(s, "X-Portcullis-Auth", "", env->auth_user, "");
	spool_header(s, "X-Portcullis-Client", "", env->client_addr, "");
	snprintf(sid, sizeof(sid), "%016llx",
	    (unsigned long long)env->session_id);
	spool_header(s, "X-Portcullis-Session", "", sid, "");
	if (env->body_8bit)
		spool_header(s, "X-Portcullis-Body", "", "8BITMIME", "");
	if (env->smtputf8)
		spool_header(s, "X-Portcullis-SMTPUTF8", "", "yes", "");
}

/* Create tmp/<id> under a fresh id that new/ does not hold either. */
static int
spool_create(struct spool_delivery *s)
{
	struct stat	 sb;
	int		 tries;

	int		 save;

	for (tries = 0; tries < SPOOL_ID_TRIES; tries++) {
		snprintf(s->id, sizeof(s->id), "%08" PRIx32 "%08" PRIx32,
		    arc4random(), arc4random());
		snprintf(s->tmpname, sizeof(s->tmpname), "%s.%ld", s->id,
		    (long)spool_pid);
		s->fd = openat(deliver_env.tmp_fd, s->tmpname,
		    O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
		if (s->fd == -1) {
			if (errno == EEXIST)
				continue;
			save = errno;
			log_warn("session %016llx: spool: create tmp/%s",
			    (unsigned long long)s->d.session_id, s->tmpname);
			errno = save;	/* ENOSPC: the caller says 452 */
			return -1;
		}
		/* Only one worker can hold tmp/<id>: this check is safe. */
		if (fstatat(deliver_env.new_fd, s->id, &sb,
		    AT_SYMLINK_NOFOLLOW) == -1 && errno == ENOENT)
			return 0;
		close(s->fd);
		s->fd = -1;
		unlinkat(deliver_env.tmp_fd, s->tmpname, 0);
	}
	log_warnx("session %016llx: spool: no free queue id after %d tries",
	    (unsigned long long)s->d.session_id, SPOOL_ID_TRIES);
	errno = EEXIST;
	return -1;
}

static struct delivery *
spool_begin(const struct envelope *env, deliver_done_cb done, void *arg)
{
	struct spool_delivery	*s;

	if (deliver_env.tmp_fd == -1 || deliver_env.new_fd == -1) {
		log_warnx("session %016llx: spool not open",
		    (unsigned long long)env->session_id);
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warn("session %016llx: spool",
		    (unsigned long long)env->session_id);
		return NULL;
	}
	deliver_head_init(&s->d, &deliver_spool_ops, env, done, arg);
	s->fd = -1;
	if (spool_create(s) == -1) {
		free(s);	/* keeps errno */
		return NULL;
	}
	spool_envelope(s, env);
	return &s->d;
}

static void
spool_discard(struct spool_delivery *s)
{
	if (s->fd != -1) {
		close(s->fd);
		s->fd = -1;
	}
	if (unlinkat(deliver_env.tmp_fd, s->tmpname, 0) == -1 &&
	    errno != ENOENT)
		log_warn("session %016llx: spool: unlink tmp/%s",
		    (unsigned long long)s->d.session_id, s->tmpname);
}

static int
spool_write(struct delivery *d, const void *buf, size_t len)
{
	struct spool_delivery	*s = (struct spool_delivery *)d;

	spool_put(s, buf, len);
	s->octets += len;
	if (s->error == 0)
		return 0;
	/* The rest of DATA is read and dropped: give the space back now. */
	if (s->fd != -1)
		spool_discard(s);
	return -1;
}

/* flush, fsync, close, rename into new/, fsync new/ */
static int
spool_commit(struct spool_delivery *s)
{
	int	 fd;

	spool_flush(s);
	if (s->error != 0)
		return -1;
	if (fsync(s->fd) == -1) {
		spool_fail(s, "fsync", errno);
		return -1;
	}
	fd = s->fd;
	s->fd = -1;
	if (close(fd) == -1) {
		spool_fail(s, "close", errno);
		return -1;
	}
	if (renameat(deliver_env.tmp_fd, s->tmpname, deliver_env.new_fd,
	    s->id) == -1) {
		spool_fail(s, "rename into new/", errno);
		return -1;
	}
	if (fsync(deliver_env.new_fd) == -1) {
		/*
		 * The file is in new/ but its name may not survive a
		 * crash; the client will retry, so take it back out
		 * rather than deliver it twice.
		 */
		spool_fail(s, "fsync new/", errno);
		if (renameat(deliver_env.new_fd, s->id, deliver_env.tmp_fd,
		    s->tmpname) == -1)
			log_warn("session %016llx: spool: cannot take "
			    "new/%s back", (unsigned long long)s->d.session_id,
			    s->id);
		return -1;
	}
	return 0;
}

static void
spool_end(struct delivery *d)
{
	struct spool_delivery	*s = (struct spool_delivery *)d;
	char			 text[64];

	if (spool_commit(s) == -1) {
		errno = s->error;
		log_warn("session %016llx: spool: %s tmp/%s",
		    (unsigned long long)d->session_id, s->failed_op,
		    s->tmpname);
		spool_discard(s);
		if (deliver_no_space(s->error))
			deliver_finish(d, s, 452, "4.3.1",
			    "Insufficient system storage");
		else
			deliver_finish(d, s, 451, "4.3.0",
			    "Local error in processing");
		return;
	}
	log_debug("session %016llx: queued as %s, %llu octets",
	    (unsigned long long)d->session_id, s->id,
	    (unsigned long long)s->octets);
	snprintf(text, sizeof(text), "Ok: queued as %s", s->id);
	deliver_finish(d, s, 250, "2.0.0", text);
}

static void
spool_abort(struct delivery *d)
{
	struct spool_delivery	*s = (struct spool_delivery *)d;

	spool_discard(s);
	free(s);
}

/* RFC 3463 4.3.1 rather than 4.3.0: the client may try later. */
int
deliver_no_space(int error)
{
	return error == ENOSPC || error == EDQUOT;
}

/*
 * Room for a message of size octets (0: not announced) above the
 * spool-min-free floor?  fstatvfs(2) on tmp/, which the worker holds
 * open: the blocks available to an unprivileged user, which the
 * workers' user is.  Methods other than the spool always have room,
 * and so does a spool whose size cannot be read (the write would tell).
 */
int
deliver_spool_room(uint64_t size)
{
	static time_t	 logged;
	struct statvfs	 sv;
	uint64_t	 avail, need;
	uint64_t	 floor = deliver_env.conf != NULL ?
			    deliver_env.conf->spool_min_free : 0;
	time_t		 now;

	if (deliver_env.tmp_fd == -1 || (floor == 0 && size == 0))
		return 0;
	if (fstatvfs(deliver_env.tmp_fd, &sv) == -1) {
		log_warn("deliver: spool: fstatvfs");
		return 0;
	}
	avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	need = floor + size;
	if (avail >= need)
		return 0;
	now = time(NULL);
	if (now - logged >= SPOOL_ROOM_LOG_SEC) {
		logged = now;
		log_warnx("deliver: spool %s: %llu KiB free, %llu KiB "
		    "needed (spool-min-free and the announced size): MAIL "
		    "refused with 452 until there is room",
		    deliver_env.conf->spool, (unsigned long long)avail / 1024,
		    (unsigned long long)need / 1024);
	}
	return -1;
}

const struct deliver_ops deliver_spool_ops = {
	.name = "spool",
	.init = spool_init,
	.cleanup = spool_cleanup,
	.begin = spool_begin,
	.write = spool_write,
	.end = spool_end,
	.abort = spool_abort,
	.pending = NULL,
};
