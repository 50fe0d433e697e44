/*
 * imsg_buffer.c -- the buffer layer of our imsg(3): OpenBSD 7.7's
 * ibuf_add(3) family, and the write queue of a channel (struct msgbuf).
 * imsg.c frames messages on top of it.
 *
 * What this file guarantees:
 *  - an ibuf never reads or writes outside its buffer: every add, set,
 *    get and seek checks its bounds first and fails with ERANGE (a
 *    dynamic ibuf grows only up to its max);
 *  - a borrowed buffer (ibuf_from_buffer) is never freed, and never
 *    owns a descriptor;
 *  - freed buffers are zeroed first: payloads may hold credentials;
 *  - the write queue sends messages whole and in order however sendmsg
 *    cuts them, each descriptor with the first byte of its message,
 *    and closes a queued descriptor when its message is dropped.
 * It is built from the manual pages, not from OpenBSD's source.
 */

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imsg.h"

#include "imsg_int.h"

/* ibuf_from_buffer() buffers live in memory we do not own. */
#define IBUF_FD_ON_STACK	-2

#define MSGBUF_IOV_MAX		64

static void	msgbuf_dequeue(struct msgbuf *, struct ibuf *);

/* ---- ibuf ---- */

struct ibuf *
ibuf_open(size_t len)
{
	struct ibuf	*buf;

	if (len == 0) {
		errno = EINVAL;
		return NULL;
	}
	if ((buf = calloc(1, sizeof(*buf))) == NULL)
		return NULL;
	if ((buf->buf = calloc(len, 1)) == NULL) {
		free(buf);
		return NULL;
	}
	buf->size = buf->max = len;
	buf->fd = -1;
	return buf;
}

struct ibuf *
ibuf_dynamic(size_t len, size_t max)
{
	struct ibuf	*buf;

	if (max == 0 || max < len) {
		errno = EINVAL;
		return NULL;
	}
	if ((buf = calloc(1, sizeof(*buf))) == NULL)
		return NULL;
	if (len > 0 && (buf->buf = calloc(len, 1)) == NULL) {
		free(buf);
		return NULL;
	}
	buf->size = len;
	buf->max = max;
	buf->fd = -1;
	return buf;
}

/* Make room for len more bytes at wpos, growing within max. */
static int
ibuf_grow(struct ibuf *buf, size_t len)
{
	unsigned char	*b;
	size_t		 need, nsize;

	if (buf->fd == IBUF_FD_ON_STACK || len > SIZE_MAX - buf->wpos ||
	    buf->wpos + len > buf->max) {
		errno = ERANGE;
		return -1;
	}
	need = buf->wpos + len;
	if (need <= buf->size)
		return 0;
	/* Double, so that a message built by many small adds stays linear. */
	nsize = buf->size > buf->max / 2 ? buf->max : buf->size * 2;
	if (nsize < need)
		nsize = need;
	if ((b = realloc(buf->buf, nsize)) == NULL)
		return -1;
	memset(b + buf->size, 0, nsize - buf->size);
	buf->buf = b;
	buf->size = nsize;
	return 0;
}

void *
ibuf_reserve(struct ibuf *buf, size_t len)
{
	void	*b;

	if (ibuf_grow(buf, len) == -1)
		return NULL;
	b = buf->buf + buf->wpos;
	buf->wpos += len;
	return b;
}

int
ibuf_add(struct ibuf *buf, const void *data, size_t len)
{
	void	*b;

	if (len == 0)
		return 0;
	if (data == NULL) {
		errno = EINVAL;
		return -1;
	}
	if ((b = ibuf_reserve(buf, len)) == NULL)
		return -1;
	memcpy(b, data, len);
	return 0;
}

int
ibuf_add_ibuf(struct ibuf *buf, const struct ibuf *from)
{
	return ibuf_add(buf, ibuf_data(from), ibuf_size(from));
}

int
ibuf_add_zero(struct ibuf *buf, size_t len)
{
	void	*b;

	if (len == 0)
		return 0;
	if ((b = ibuf_reserve(buf, len)) == NULL)
		return -1;
	/* The space may hold bytes left behind by ibuf_truncate(). */
	memset(b, 0, len);
	return 0;
}

int
ibuf_add_n8(struct ibuf *buf, uint64_t value)
{
	uint8_t	 v;

	if (value > UINT8_MAX) {
		errno = EINVAL;
		return -1;
	}
	v = value;
	return ibuf_add(buf, &v, sizeof(v));
}

int
ibuf_add_n16(struct ibuf *buf, uint64_t value)
{
	uint16_t v;

	if (value > UINT16_MAX) {
		errno = EINVAL;
		return -1;
	}
	v = htobe16((uint16_t)value);
	return ibuf_add(buf, &v, sizeof(v));
}

int
ibuf_add_n32(struct ibuf *buf, uint64_t value)
{
	uint32_t v;

	if (value > UINT32_MAX) {
		errno = EINVAL;
		return -1;
	}
	v = htobe32((uint32_t)value);
	return ibuf_add(buf, &v, sizeof(v));
}

int
ibuf_add_n64(struct ibuf *buf, uint64_t value)
{
	value = htobe64(value);
	return ibuf_add(buf, &value, sizeof(value));
}

int
ibuf_add_h16(struct ibuf *buf, uint64_t value)
{
	uint16_t v;

	if (value > UINT16_MAX) {
		errno = EINVAL;
		return -1;
	}
	v = value;
	return ibuf_add(buf, &v, sizeof(v));
}

int
ibuf_add_h32(struct ibuf *buf, uint64_t value)
{
	uint32_t v;

	if (value > UINT32_MAX) {
		errno = EINVAL;
		return -1;
	}
	v = value;
	return ibuf_add(buf, &v, sizeof(v));
}

int
ibuf_add_h64(struct ibuf *buf, uint64_t value)
{
	return ibuf_add(buf, &value, sizeof(value));
}

void *
ibuf_seek(struct ibuf *buf, size_t pos, size_t len)
{
	size_t	 size = ibuf_size(buf);

	if (pos > size || len > size - pos || buf->buf == NULL) {
		errno = ERANGE;
		return NULL;
	}
	return buf->buf + buf->rpos + pos;
}

int
ibuf_set(struct ibuf *buf, size_t pos, const void *data, size_t len)
{
	void	*b;

	if ((b = ibuf_seek(buf, pos, len)) == NULL)
		return -1;
	if (len > 0)
		memcpy(b, data, len);
	return 0;
}

int
ibuf_set_n8(struct ibuf *buf, size_t pos, uint64_t value)
{
	uint8_t	 v;

	if (value > UINT8_MAX) {
		errno = EINVAL;
		return -1;
	}
	v = value;
	return ibuf_set(buf, pos, &v, sizeof(v));
}

int
ibuf_set_n16(struct ibuf *buf, size_t pos, uint64_t value)
{
	uint16_t v;

	if (value > UINT16_MAX) {
		errno = EINVAL;
		return -1;
	}
	v = htobe16((uint16_t)value);
	return ibuf_set(buf, pos, &v, sizeof(v));
}

int
ibuf_set_n32(struct ibuf *buf, size_t pos, uint64_t value)
{
	uint32_t v;

	if (value > UINT32_MAX) {
		errno = EINVAL;
		return -1;
	}
	v = htobe32((uint32_t)value);
	return ibuf_set(buf, pos, &v, sizeof(v));
}

int
ibuf_set_n64(struct ibuf *buf, size_t pos, uint64_t value)
{
	value = htobe64(value);
	return ibuf_set(buf, pos, &value, sizeof(value));
}

int
ibuf_set_h16(struct ibuf *buf, size_t pos, uint64_t value)
{
	uint16_t v;

	if (value > UINT16_MAX) {
		errno = EINVAL;
		return -1;
	}
	v = value;
	return ibuf_set(buf, pos, &v, sizeof(v));
}

int
ibuf_set_h32(struct ibuf *buf, size_t pos, uint64_t value)
{
	uint32_t v;

	if (value > UINT32_MAX) {
		errno = EINVAL;
		return -1;
	}
	v = value;
	return ibuf_set(buf, pos, &v, sizeof(v));
}

int
ibuf_set_h64(struct ibuf *buf, size_t pos, uint64_t value)
{
	return ibuf_set(buf, pos, &value, sizeof(value));
}

void *
ibuf_data(const struct ibuf *buf)
{
	/* No arithmetic on the NULL of an empty dynamic buffer. */
	if (buf->buf == NULL)
		return NULL;
	return buf->buf + buf->rpos;
}

size_t
ibuf_size(const struct ibuf *buf)
{
	return buf->wpos - buf->rpos;
}

size_t
ibuf_left(const struct ibuf *buf)
{
	if (buf->fd == IBUF_FD_ON_STACK)
		return 0;
	return buf->max - buf->wpos;
}

int
ibuf_truncate(struct ibuf *buf, size_t len)
{
	if (ibuf_size(buf) >= len) {
		buf->wpos = buf->rpos + len;
		return 0;
	}
	return ibuf_add_zero(buf, len - ibuf_size(buf));
}

void
ibuf_rewind(struct ibuf *buf)
{
	buf->rpos = 0;
}

void
ibuf_close(struct msgbuf *msgbuf, struct ibuf *buf)
{
	if (buf == NULL)
		return;
	if (msgbuf == NULL) {
		ibuf_free(buf);
		return;
	}
	TAILQ_INSERT_TAIL(&msgbuf->bufs, buf, entry);
	msgbuf->queued++;
}

void
ibuf_from_buffer(struct ibuf *buf, void *data, size_t len)
{
	memset(buf, 0, sizeof(*buf));
	buf->buf = data;
	buf->size = buf->max = buf->wpos = len;
	buf->fd = IBUF_FD_ON_STACK;
}

void
ibuf_from_ibuf(struct ibuf *buf, const struct ibuf *from)
{
	ibuf_from_buffer(buf, ibuf_data(from), ibuf_size(from));
}

int
ibuf_get(struct ibuf *buf, void *data, size_t len)
{
	if (ibuf_size(buf) < len) {
		errno = EBADMSG;
		return -1;
	}
	if (len > 0) {
		memcpy(data, ibuf_data(buf), len);
		buf->rpos += len;
	}
	return 0;
}

int
ibuf_get_ibuf(struct ibuf *buf, size_t len, struct ibuf *new)
{
	if (ibuf_size(buf) < len) {
		errno = EBADMSG;
		return -1;
	}
	ibuf_from_buffer(new, ibuf_data(buf), len);
	buf->rpos += len;
	return 0;
}

int
ibuf_get_n8(struct ibuf *buf, uint8_t *value)
{
	return ibuf_get(buf, value, sizeof(*value));
}

int
ibuf_get_n16(struct ibuf *buf, uint16_t *value)
{
	uint16_t v;

	if (ibuf_get(buf, &v, sizeof(v)) == -1)
		return -1;
	*value = be16toh(v);
	return 0;
}

int
ibuf_get_n32(struct ibuf *buf, uint32_t *value)
{
	uint32_t v;

	if (ibuf_get(buf, &v, sizeof(v)) == -1)
		return -1;
	*value = be32toh(v);
	return 0;
}

int
ibuf_get_n64(struct ibuf *buf, uint64_t *value)
{
	uint64_t v;

	if (ibuf_get(buf, &v, sizeof(v)) == -1)
		return -1;
	*value = be64toh(v);
	return 0;
}

int
ibuf_get_h16(struct ibuf *buf, uint16_t *value)
{
	return ibuf_get(buf, value, sizeof(*value));
}

int
ibuf_get_h32(struct ibuf *buf, uint32_t *value)
{
	return ibuf_get(buf, value, sizeof(*value));
}

int
ibuf_get_h64(struct ibuf *buf, uint64_t *value)
{
	return ibuf_get(buf, value, sizeof(*value));
}

char *
ibuf_get_string(struct ibuf *buf, size_t len)
{
	char	*str;

	if (ibuf_size(buf) < len) {
		errno = EBADMSG;
		return NULL;
	}
	if (len == SIZE_MAX || (str = malloc(len + 1)) == NULL)
		return NULL;
	if (ibuf_get(buf, str, len) == -1) {
		free(str);
		return NULL;
	}
	str[len] = '\0';
	return str;
}

int
ibuf_skip(struct ibuf *buf, size_t len)
{
	if (ibuf_size(buf) < len) {
		errno = EBADMSG;
		return -1;
	}
	buf->rpos += len;
	return 0;
}

void
ibuf_free(struct ibuf *buf)
{
	int	 saved_errno;

	if (buf == NULL || buf->fd == IBUF_FD_ON_STACK)
		return;
	/* Callers free on error paths and then report errno. */
	saved_errno = errno;
	if (buf->fd >= 0)
		close(buf->fd);
	if (buf->buf != NULL) {
		explicit_bzero(buf->buf, buf->size);
		free(buf->buf);
	}
	free(buf);
	errno = saved_errno;
}

int
ibuf_fd_avail(struct ibuf *buf)
{
	return buf->fd >= 0;
}

int
ibuf_fd_get(struct ibuf *buf)
{
	int	 fd;

	if (buf->fd < 0)
		return -1;
	fd = buf->fd;
	buf->fd = -1;
	return fd;
}

void
ibuf_fd_set(struct ibuf *buf, int fd)
{
	/* A borrowed buffer cannot own a descriptor: ibuf_free skips it. */
	if (buf->fd == IBUF_FD_ON_STACK) {
		if (fd >= 0)
			close(fd);
		return;
	}
	if (buf->fd >= 0)
		close(buf->fd);
	buf->fd = fd >= 0 ? fd : -1;
}

/* ---- msgbuf: the write queue and the read state of one channel ---- */

struct msgbuf *
msgbuf_new(void)
{
	struct msgbuf	*mb;

	if ((mb = calloc(1, sizeof(*mb))) == NULL)
		return NULL;
	TAILQ_INIT(&mb->bufs);
	TAILQ_INIT(&mb->rbufs);
	mb->rhdrfd = -1;
	return mb;
}

void
msgbuf_free(struct msgbuf *mb)
{
	struct ibuf	*buf;

	if (mb == NULL)
		return;
	while ((buf = TAILQ_FIRST(&mb->bufs)) != NULL)
		msgbuf_dequeue(mb, buf);
	while ((buf = TAILQ_FIRST(&mb->rbufs)) != NULL) {
		TAILQ_REMOVE(&mb->rbufs, buf, entry);
		ibuf_free(buf);
	}
	ibuf_free(mb->rmsg);
	if (mb->rhdrfd >= 0)
		close(mb->rhdrfd);
	explicit_bzero(mb, sizeof(*mb));
	free(mb);
}

uint32_t
msgbuf_queuelen(struct msgbuf *mb)
{
	if (mb == NULL)
		return 0;
	return mb->queued;
}

static void
msgbuf_dequeue(struct msgbuf *mb, struct ibuf *buf)
{
	TAILQ_REMOVE(&mb->bufs, buf, entry);
	mb->queued--;
	ibuf_free(buf);
}

/* Forget what sendmsg took, and anything empty at the head. */
static void
msgbuf_drain(struct msgbuf *mb, size_t n)
{
	struct ibuf	*buf;
	size_t		 left;

	while ((buf = TAILQ_FIRST(&mb->bufs)) != NULL) {
		left = ibuf_size(buf);
		if (left > n) {
			buf->rpos += n;
			return;
		}
		n -= left;
		msgbuf_dequeue(mb, buf);
	}
}

/*
 * One sendmsg of as much as is queued.  Returns 1 after progress or
 * when nothing is queued, 0 when the socket cannot take more now, and
 * -1 on error.
 */
int
msgbuf_write(int fd, struct msgbuf *mb, int fdpass)
{
	struct iovec	 iov[MSGBUF_IOV_MAX];
	union {
		struct cmsghdr	hdr;
		unsigned char	buf[CMSG_SPACE(sizeof(int))];
	} cmsgbuf;
	struct msghdr	 msg;
	struct cmsghdr	*cmsg;
	struct ibuf	*buf, *first;
	ssize_t		 n;
	int		 i = 0, sendfd = 0;

	msgbuf_drain(mb, 0);
	if ((first = TAILQ_FIRST(&mb->bufs)) == NULL)
		return 1;

	TAILQ_FOREACH(buf, &mb->bufs, entry) {
		if (i >= MSGBUF_IOV_MAX)
			break;
		/*
		 * The receiver pairs a descriptor with the message whose
		 * first byte came with it, so a message carrying one always
		 * starts a sendmsg.
		 */
		if (fdpass && i > 0 && buf->fd >= 0)
			break;
		iov[i].iov_base = ibuf_data(buf);
		iov[i].iov_len = ibuf_size(buf);
		i++;
	}

	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = iov;
	msg.msg_iovlen = i;
	if (fdpass && first->fd >= 0) {
		memset(&cmsgbuf, 0, sizeof(cmsgbuf));
		msg.msg_control = cmsgbuf.buf;
		msg.msg_controllen = sizeof(cmsgbuf.buf);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		memcpy(CMSG_DATA(cmsg), &first->fd, sizeof(int));
		sendfd = 1;
	}

	/* A vanished peer is an EPIPE to report, not a SIGPIPE to die of. */
	while ((n = sendmsg(fd, &msg, MSG_NOSIGNAL)) == -1) {
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
			return 0;
		return -1;
	}
	if (n == 0)
		return 0;
	/* The kernel holds its own reference to a sent descriptor. */
	if (sendfd)
		ibuf_fd_set(first, -1);
	msgbuf_drain(mb, (size_t)n);
	return 1;
}
