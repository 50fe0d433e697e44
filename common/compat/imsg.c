/*
 * imsg.c -- OpenBSD 7.7 imsg(3), written for Linux: messages framed
 * on the buffers and write queue of imsg_buffer.c.
 *
 * Messages travel as a byte stream over a SOCK_STREAM socket: a
 * 16-byte header whose len covers the whole message, then the payload.
 * What this file guarantees:
 *  - a message is handed to imsg_get() only whole, in the order sent,
 *    however the stream was cut by partial writes and reads;
 *  - a received header whose length is below the header size or above
 *    the channel's maximum poisons the channel (ERANGE) before any
 *    memory is allocated for it; no byte outside a buffer is touched;
 *  - descriptors: at most one per message, sent with the message's
 *    first byte.  A received descriptor either ends up attached to the
 *    message that announced it, or is closed at once: one that the
 *    channel did not ask for (imsgbuf_allow_fdpass), that no message
 *    claims, that came in a truncated control message, or beyond the
 *    first of a control message.  None is ever leaked;
 *  - freed buffers are zeroed first: payloads may hold credentials.
 * It is built from the manual pages, not from OpenBSD's source.
 */

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imsg.h"

#include "imsg_int.h"

#define IMSG_ALLOW_FDPASS	0x01
#define IMSG_FD_MARK		0x80000000U

/*
 * imsgbuf_set_maxsize() refuses more than this: the receiver allocates
 * a whole message as soon as its header is in, so the maximum bounds
 * what a hostile peer can make us allocate at once.
 */
#define IMSG_MAXSIZE_LIMIT	(64U * 1024 * 1024)

/*
 * A well-behaved peer sends one descriptor per sendmsg.  Room for a few
 * more lets us see, and close, what a misbehaving one sends; the kernel
 * releases whatever does not fit (and flags MSG_CTRUNC).
 */
#define MSGBUF_RECV_FDS		16

_Static_assert(sizeof(struct imsg_hdr) == 16, "imsg header is 16 bytes");

/*
 * Feed one recvmsg worth of stream to the message parser.  fd, if not
 * -1, came with the first byte of this chunk; it belongs to the first
 * message that starts in the chunk and announces a descriptor.  A
 * message whose header is still incomplete at the end keeps it for
 * later; otherwise it is closed.  Consumes fd in every case.
 */
static int
msgbuf_input(struct imsgbuf *imsgbuf, const unsigned char *p, size_t n,
    int fd)
{
	struct msgbuf	*mb = imsgbuf->w;
	struct imsg_hdr	 hdr;
	size_t		 take, len;
	int		*claim;
	int		 here = 0;	/* current header began in chunk */

	while (n > 0) {
		if (mb->rmsg == NULL) {
			if (mb->rhdrlen == 0)
				here = 1;
			take = sizeof(mb->rhdr) - mb->rhdrlen;
			if (take > n)
				take = n;
			memcpy(mb->rhdr + mb->rhdrlen, p, take);
			mb->rhdrlen += take;
			p += take;
			n -= take;
			if (mb->rhdrlen < sizeof(mb->rhdr))
				break;

			memcpy(&hdr, mb->rhdr, sizeof(hdr));
			mb->rhdrlen = 0;
			len = hdr.len & ~IMSG_FD_MARK;
			if (len < IMSG_HEADER_SIZE || len > imsgbuf->maxsize) {
				errno = ERANGE;
				goto fail;
			}
			if ((mb->rmsg = ibuf_open(len)) == NULL)
				goto fail;
			/* Cannot fail: len >= the header size. */
			(void)ibuf_add(mb->rmsg, &hdr, sizeof(hdr));

			claim = here ? &fd : &mb->rhdrfd;
			if (hdr.len & IMSG_FD_MARK) {
				ibuf_fd_set(mb->rmsg, *claim);
				*claim = -1;
			} else if (!here && mb->rhdrfd >= 0) {
				/* It came with this message, which has no use. */
				close(mb->rhdrfd);
				mb->rhdrfd = -1;
			}
		} else {
			take = mb->rmsg->max - mb->rmsg->wpos;
			if (take > n)
				take = n;
			(void)ibuf_add(mb->rmsg, p, take);
			p += take;
			n -= take;
		}
		if (mb->rmsg->wpos == mb->rmsg->max) {
			TAILQ_INSERT_TAIL(&mb->rbufs, mb->rmsg, entry);
			mb->rmsg = NULL;
		}
	}

	if (fd >= 0) {
		if (here && mb->rhdrlen > 0) {
			if (mb->rhdrfd >= 0)
				close(mb->rhdrfd);
			mb->rhdrfd = fd;
		} else
			close(fd);
	}
	return 0;

 fail:
	if (fd >= 0)
		close(fd);
	return -1;
}

static int
msgbuf_read(struct imsgbuf *imsgbuf)
{
	struct msgbuf	*mb = imsgbuf->w;
	union {
		struct cmsghdr	hdr;
		unsigned char	buf[CMSG_SPACE(sizeof(int) * MSGBUF_RECV_FDS)];
	} cmsgbuf;
	struct msghdr	 msg;
	struct cmsghdr	*cmsg;
	struct iovec	 iov;
	unsigned char	*data, *end;
	ssize_t		 n;
	size_t		 nfds, k;
	int		 fd = -1, f, keep;

	if (mb->rerrno != 0) {
		errno = mb->rerrno;
		return -1;
	}

	memset(&msg, 0, sizeof(msg));
	memset(&cmsgbuf, 0, sizeof(cmsgbuf));
	iov.iov_base = mb->rbuf;
	iov.iov_len = sizeof(mb->rbuf);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	/* Always room for descriptors, so that unwanted ones get closed. */
	msg.msg_control = cmsgbuf.buf;
	msg.msg_controllen = sizeof(cmsgbuf.buf);

	while ((n = recvmsg(imsgbuf->fd, &msg, MSG_CMSG_CLOEXEC)) == -1) {
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 1;
		return -1;
	}

	/*
	 * A truncated control message means the peer sent more than one
	 * descriptor per message: trust none of them.
	 */
	keep = (imsgbuf->flags & IMSG_ALLOW_FDPASS) &&
	    !(msg.msg_flags & MSG_CTRUNC);
	end = (unsigned char *)msg.msg_control + msg.msg_controllen;
	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL;
	    cmsg = CMSG_NXTHDR(&msg, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET ||
		    cmsg->cmsg_type != SCM_RIGHTS ||
		    cmsg->cmsg_len < CMSG_LEN(0))
			continue;
		data = CMSG_DATA(cmsg);
		nfds = cmsg->cmsg_len - CMSG_LEN(0);
		if (data > end)
			continue;
		if (nfds > (size_t)(end - data))
			nfds = end - data;
		nfds /= sizeof(int);
		for (k = 0; k < nfds; k++) {
			memcpy(&f, data + k * sizeof(int), sizeof(int));
			if (f < 0)
				continue;
			if (keep && fd == -1)
				fd = f;
			else
				close(f);
		}
	}

	if (n == 0) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	if (msgbuf_input(imsgbuf, mb->rbuf, (size_t)n, fd) == -1) {
		mb->rerrno = errno;
		return -1;
	}
	return 1;
}

/* ---- imsgbuf ---- */

int
imsgbuf_init(struct imsgbuf *imsgbuf, int fd)
{
	if ((imsgbuf->w = msgbuf_new()) == NULL)
		return -1;
	imsgbuf->pid = getpid();
	imsgbuf->maxsize = MAX_IMSGSIZE;
	imsgbuf->fd = fd;
	imsgbuf->flags = 0;
	return 0;
}

void
imsgbuf_allow_fdpass(struct imsgbuf *imsgbuf)
{
	imsgbuf->flags |= IMSG_ALLOW_FDPASS;
}

int
imsgbuf_set_maxsize(struct imsgbuf *imsgbuf, uint32_t max)
{
	if (max < IMSG_HEADER_SIZE || max > IMSG_MAXSIZE_LIMIT) {
		errno = EINVAL;
		return -1;
	}
	imsgbuf->maxsize = max;
	return 0;
}

int
imsgbuf_read(struct imsgbuf *imsgbuf)
{
	if (imsgbuf->w == NULL) {
		errno = EINVAL;
		return -1;
	}
	return msgbuf_read(imsgbuf);
}

int
imsgbuf_write(struct imsgbuf *imsgbuf)
{
	if (imsgbuf->w == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (msgbuf_write(imsgbuf->fd, imsgbuf->w,
	    imsgbuf->flags & IMSG_ALLOW_FDPASS) == -1)
		return -1;
	return 0;
}

int
imsgbuf_flush(struct imsgbuf *imsgbuf)
{
	struct pollfd	 pfd;
	int		 rv;

	if (imsgbuf->w == NULL) {
		errno = EINVAL;
		return -1;
	}
	while (imsgbuf_queuelen(imsgbuf) > 0) {
		rv = msgbuf_write(imsgbuf->fd, imsgbuf->w,
		    imsgbuf->flags & IMSG_ALLOW_FDPASS);
		if (rv == -1)
			return -1;
		if (rv == 1)
			continue;
		/* Full: wait instead of spinning on a non-blocking socket. */
		pfd.fd = imsgbuf->fd;
		pfd.events = POLLOUT;
		pfd.revents = 0;
		if (poll(&pfd, 1, -1) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (pfd.revents & POLLNVAL) {
			errno = EBADF;
			return -1;
		}
	}
	return 0;
}

void
imsgbuf_clear(struct imsgbuf *imsgbuf)
{
	msgbuf_free(imsgbuf->w);
	imsgbuf->w = NULL;
}

uint32_t
imsgbuf_queuelen(struct imsgbuf *imsgbuf)
{
	return msgbuf_queuelen(imsgbuf->w);
}

/* ---- imsg ---- */

ssize_t
imsg_get(struct imsgbuf *imsgbuf, struct imsg *imsg)
{
	struct msgbuf	*mb = imsgbuf->w;
	struct ibuf	*buf;
	struct imsg	 m;

	if (mb == NULL) {
		errno = EINVAL;
		return -1;
	}
	if ((buf = TAILQ_FIRST(&mb->rbufs)) == NULL) {
		/* Deliver what came before the corruption, then fail. */
		if (mb->rerrno != 0) {
			errno = mb->rerrno;
			return -1;
		}
		return 0;
	}
	TAILQ_REMOVE(&mb->rbufs, buf, entry);
	/* The parser only queues whole messages; refuse anything else. */
	if (ibuf_get(buf, &m.hdr, sizeof(m.hdr)) == -1) {
		ibuf_free(buf);
		errno = EBADMSG;
		return -1;
	}
	m.hdr.len &= ~IMSG_FD_MARK;
	m.data = ibuf_size(buf) > 0 ? ibuf_data(buf) : NULL;
	m.buf = buf;
	*imsg = m;
	return (ssize_t)m.hdr.len;
}

int
imsg_get_ibuf(struct imsg *imsg, struct ibuf *ibuf)
{
	if (imsg->buf == NULL || ibuf_size(imsg->buf) == 0) {
		errno = EBADMSG;
		return -1;
	}
	return ibuf_get_ibuf(imsg->buf, ibuf_size(imsg->buf), ibuf);
}

int
imsg_get_data(struct imsg *imsg, void *data, size_t len)
{
	if (len == 0) {
		errno = EINVAL;
		return -1;
	}
	/* Exactly len: receivers rely on this as their length check. */
	if (imsg->buf == NULL || ibuf_size(imsg->buf) != len) {
		errno = EBADMSG;
		return -1;
	}
	return ibuf_get(imsg->buf, data, len);
}

int
imsg_get_fd(struct imsg *imsg)
{
	if (imsg->buf == NULL)
		return -1;
	return ibuf_fd_get(imsg->buf);
}

uint32_t
imsg_get_id(struct imsg *imsg)
{
	return imsg->hdr.peerid;
}

size_t
imsg_get_len(struct imsg *imsg)
{
	if (imsg->buf == NULL)
		return 0;
	return ibuf_size(imsg->buf);
}

pid_t
imsg_get_pid(struct imsg *imsg)
{
	return (pid_t)imsg->hdr.pid;
}

uint32_t
imsg_get_type(struct imsg *imsg)
{
	return imsg->hdr.type;
}

struct ibuf *
imsg_create(struct imsgbuf *imsgbuf, uint32_t type, uint32_t id, pid_t pid,
    size_t datalen)
{
	struct ibuf	*wbuf;
	struct imsg_hdr	 hdr;

	if (imsgbuf->maxsize < IMSG_HEADER_SIZE ||
	    datalen > imsgbuf->maxsize - IMSG_HEADER_SIZE) {
		errno = ERANGE;
		return NULL;
	}
	hdr.type = type;
	hdr.len = 0;		/* imsg_close() knows the final size */
	hdr.peerid = id;
	hdr.pid = pid == 0 ? (uint32_t)imsgbuf->pid : (uint32_t)pid;
	if ((wbuf = ibuf_dynamic(datalen + IMSG_HEADER_SIZE,
	    imsgbuf->maxsize)) == NULL)
		return NULL;
	if (ibuf_add(wbuf, &hdr, sizeof(hdr)) == -1) {
		ibuf_free(wbuf);
		return NULL;
	}
	return wbuf;
}

int
imsg_add(struct ibuf *msg, const void *data, size_t datalen)
{
	if (msg == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (datalen > 0 && ibuf_add(msg, data, datalen) == -1) {
		ibuf_free(msg);
		return -1;
	}
	return (int)datalen;
}

void
imsg_close(struct imsgbuf *imsgbuf, struct ibuf *msg)
{
	uint32_t	 len;

	if (msg == NULL)
		return;
	len = (uint32_t)msg->wpos;
	if (ibuf_fd_avail(msg))
		len |= IMSG_FD_MARK;
	memcpy(msg->buf + offsetof(struct imsg_hdr, len), &len, sizeof(len));
	ibuf_close(imsgbuf->w, msg);
}

int
imsg_compose(struct imsgbuf *imsgbuf, uint32_t type, uint32_t id, pid_t pid,
    int fd, const void *data, size_t datalen)
{
	struct ibuf	*wbuf;

	/* On failure fd is untouched: it stays the caller's, as on OpenBSD. */
	if ((wbuf = imsg_create(imsgbuf, type, id, pid, datalen)) == NULL)
		return -1;
	if (imsg_add(wbuf, data, datalen) == -1)
		return -1;
	ibuf_fd_set(wbuf, fd);
	imsg_close(imsgbuf, wbuf);
	return 1;
}

int
imsg_composev(struct imsgbuf *imsgbuf, uint32_t type, uint32_t id, pid_t pid,
    int fd, const struct iovec *iov, int iovcnt)
{
	struct ibuf	*wbuf;
	size_t		 datalen = 0;
	int		 i;

	if (iovcnt < 0 || (iovcnt > 0 && iov == NULL)) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > SIZE_MAX - datalen) {
			errno = ERANGE;
			return -1;
		}
		datalen += iov[i].iov_len;
	}
	if ((wbuf = imsg_create(imsgbuf, type, id, pid, datalen)) == NULL)
		return -1;
	for (i = 0; i < iovcnt; i++)
		if (imsg_add(wbuf, iov[i].iov_base, iov[i].iov_len) == -1)
			return -1;
	ibuf_fd_set(wbuf, fd);
	imsg_close(imsgbuf, wbuf);
	return 1;
}

int
imsg_compose_ibuf(struct imsgbuf *imsgbuf, uint32_t type, uint32_t id,
    pid_t pid, struct ibuf *buf)
{
	struct ibuf	*hdrbuf;
	struct imsg_hdr	 hdr;

	if (buf == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (imsgbuf->maxsize < IMSG_HEADER_SIZE ||
	    ibuf_size(buf) > imsgbuf->maxsize - IMSG_HEADER_SIZE) {
		errno = ERANGE;
		goto fail;
	}
	/*
	 * The payload cannot carry a descriptor: it would not travel with
	 * the first byte of the message.
	 */
	ibuf_fd_set(buf, -1);
	hdr.type = type;
	hdr.len = (uint32_t)(ibuf_size(buf) + IMSG_HEADER_SIZE);
	hdr.peerid = id;
	hdr.pid = pid == 0 ? (uint32_t)imsgbuf->pid : (uint32_t)pid;
	if ((hdrbuf = ibuf_open(IMSG_HEADER_SIZE)) == NULL)
		goto fail;
	(void)ibuf_add(hdrbuf, &hdr, sizeof(hdr));
	ibuf_close(imsgbuf->w, hdrbuf);
	ibuf_close(imsgbuf->w, buf);
	return 1;

 fail:
	ibuf_free(buf);
	return -1;
}

int
imsg_forward(struct imsgbuf *imsgbuf, struct imsg *msg)
{
	struct ibuf	*wbuf;
	size_t		 len;

	if (msg->buf == NULL) {
		errno = EINVAL;
		return -1;
	}
	ibuf_rewind(msg->buf);
	if (ibuf_skip(msg->buf, sizeof(msg->hdr)) == -1)
		return -1;
	len = ibuf_size(msg->buf);
	if ((wbuf = imsg_create(imsgbuf, msg->hdr.type, msg->hdr.peerid,
	    (pid_t)msg->hdr.pid, len)) == NULL)
		return -1;
	if (len > 0 && ibuf_add_ibuf(wbuf, msg->buf) == -1) {
		ibuf_free(wbuf);
		return -1;
	}
	imsg_close(imsgbuf, wbuf);
	return 1;
}

void
imsg_free(struct imsg *imsg)
{
	ibuf_free(imsg->buf);
	imsg->buf = NULL;
	imsg->data = NULL;
}
