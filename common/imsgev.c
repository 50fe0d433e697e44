/*
 * imsgev.c -- imsg channels on a libevent loop.
 *
 * The closed callback runs exactly once per channel and only when no
 * handler of that channel is on the stack, so an owner may free the
 * channel from it.  A handler that wants to drop its peer calls
 * imsgev_close(); the close is then reported after the handler
 * returns.
 *
 * A message reaches a table's handler only when its type is in the
 * table, its payload has the length written there, a descriptor came
 * with it if and only if the table says so, and an IMSGEV_ONCE message
 * is not repeated.  Everything else is refused by imsgev_deliver(),
 * and nowhere else.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "imsgev.h"
#include "log.h"
#include "proto.h"

static void	imsgev_dispatch(evutil_socket_t, short, void *);
static void	imsgev_update(struct imsgev *);

int
imsgev_init(struct imsgev *iev, struct event_base *base, int fd, int fdpass,
    const char *name, imsgev_handler handler, imsgev_closed closed, void *arg)
{
	int	 flags;

	memset(iev, 0, sizeof(*iev));
	if ((flags = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1)
		return -1;
	if (imsgbuf_init(&iev->ibuf, fd) == -1)
		return -1;
	if (fdpass)
		imsgbuf_allow_fdpass(&iev->ibuf);
	iev->base = base;
	iev->handler = handler;
	iev->closed = closed;
	iev->arg = arg;
	iev->name = name;
	iev->ev = event_new(base, fd, EV_READ, imsgev_dispatch, iev);
	if (iev->ev == NULL) {
		imsgbuf_clear(&iev->ibuf);
		return -1;
	}
	iev->open = 1;
	imsgev_update(iev);
	return 0;
}

static void
imsgev_update(struct imsgev *iev)
{
	uint32_t queued;
	short	 events = 0;

	if (!iev->open)
		return;
	queued = imsgbuf_queuelen(&iev->ibuf);
	if (queued > 0)
		events |= EV_WRITE;
	/* Over wq_max, queued > 0: the channel still waits for EV_WRITE. */
	if (iev->wq_max == 0 || queued <= iev->wq_max)
		events |= EV_READ;
	if (events == iev->events && event_pending(iev->ev, events, NULL))
		return;
	event_del(iev->ev);
	event_assign(iev->ev, iev->base, iev->ibuf.fd, events,
	    imsgev_dispatch, iev);
	iev->events = events;
	event_add(iev->ev, NULL);
}

/* Tear down; report to the owner unless a handler is running. */
void
imsgev_close(struct imsgev *iev)
{
	if (!iev->open)
		return;
	iev->open = 0;
	event_del(iev->ev);
	event_free(iev->ev);
	iev->ev = NULL;
	close(iev->ibuf.fd);
	imsgbuf_clear(&iev->ibuf);
	iev->ibuf.fd = -1;
	if (iev->dispatching)
		iev->close_pending = 1;
	else if (iev->closed != NULL)
		iev->closed(iev);
}

int
imsgev_compose(struct imsgev *iev, uint32_t type, uint32_t peerid, int fd,
    const void *data, size_t len)
{
	if (!iev->open) {
		if (fd != -1)
			close(fd);
		errno = EPIPE;
		return -1;
	}
	if (imsg_compose(&iev->ibuf, type, peerid, 0, fd, data, len) == -1) {
		/* imsg_compose leaves the descriptor to us when it fails. */
		log_warn("%s: compose %s", iev->name, imsg_type_name(type));
		if (fd != -1)
			close(fd);
		return -1;
	}
	imsgev_update(iev);
	return 0;
}

int
imsgev_composev(struct imsgev *iev, uint32_t type, uint32_t peerid,
    const struct iovec *iov, int iovcnt)
{
	if (!iev->open) {
		errno = EPIPE;
		return -1;
	}
	if (imsg_composev(&iev->ibuf, type, peerid, 0, -1, iov, iovcnt) ==
	    -1) {
		log_warn("%s: compose %s", iev->name, imsg_type_name(type));
		return -1;
	}
	imsgev_update(iev);
	return 0;
}

/* Blocking write of everything queued; for the last words before exit. */
int
imsgev_flush(struct imsgev *iev)
{
	int	 flags, rv;

	if (!iev->open)
		return -1;
	flags = fcntl(iev->ibuf.fd, F_GETFL);
	if (flags != -1)
		fcntl(iev->ibuf.fd, F_SETFL, flags & ~O_NONBLOCK);
	rv = imsgbuf_flush(&iev->ibuf);
	if (flags != -1)
		fcntl(iev->ibuf.fd, F_SETFL, flags);
	return rv;
}

/*
 * Switch what the peer may send (say, from configuration to running).
 * It holds from the next message on, and the IMSGEV_ONCE messages of
 * the new table may each come once again.
 */
void
imsgev_set_table(struct imsgev *iev, const struct imsg_dispatch *table)
{
	size_t	 n = 0;

	while (table != NULL && table[n].handler != NULL)
		n++;
	if (n > IMSGEV_TABLE_MAX)
		fatalx("%s: dispatch table of %zu entries", iev->name, n);
	iev->table = table;
	iev->seen = 0;
}

/* For a handler: refuse this message, saying why.  Returns -1. */
int
imsgev_reject(struct imsgev *iev, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(iev->why, sizeof(iev->why), fmt, ap);
	va_end(ap);
	return -1;
}

/* The payload of a message whose length the table has checked. */
void
imsgev_data(struct imsg *imsg, void *data, size_t len)
{
	if (imsg_get_data(imsg, data, len) == -1)
		fatalx("%s: payload of %zu octets, the table said %zu",
		    imsg_type_name(imsg_get_type(imsg)), imsg_get_len(imsg),
		    len);
}

/* NULL when the table lets the message through to *dp; else why not. */
static const char *
dispatch_check(struct imsgev *iev, struct imsg *imsg,
    const struct imsg_dispatch **dp)
{
	const struct imsg_dispatch	*d;
	uint32_t			 type = imsg_get_type(imsg);
	size_t				 i, len = imsg_get_len(imsg);
	int				 fd, min;

	for (i = 0; (d = &iev->table[i])->handler != NULL; i++)
		if (d->type == type)
			break;
	if (d->handler == NULL)
		return "unexpected type";
	min = d->flags & IMSGEV_MIN;
	if (min ? len < d->len : len != d->len) {
		snprintf(iev->why, sizeof(iev->why),
		    "bad length %zu, want %s%zu", len, min ? "at least " : "",
		    d->len);
		return iev->why;
	}
	fd = imsg->buf != NULL && ibuf_fd_avail(imsg->buf);
	if ((d->flags & IMSGEV_FD) && !fd)
		return "missing descriptor";
	if (fd && !(d->flags & (IMSGEV_FD | IMSGEV_FD_MAYBE)))
		return "descriptor not expected";
	if (d->flags & IMSGEV_ONCE) {
		if (iev->seen & (1ULL << i))
			return "repeated";
		iev->seen |= 1ULL << i;
	}
	*dp = d;
	return NULL;
}

/*
 * The one place a message is refused: a log line, the owner's refused
 * callback (master kills the child), and the channel is closed.  An
 * unclaimed descriptor is closed by imsg_free().
 */
static void
imsgev_deliver(struct imsgev *iev, struct imsg *imsg)
{
	const struct imsg_dispatch	*d = NULL;
	const char			*why;

	if (iev->table == NULL) {
		iev->handler(iev, imsg);
		return;
	}
	if ((why = dispatch_check(iev, imsg, &d)) == NULL) {
		iev->why[0] = '\0';
		if (d->handler(iev, imsg) == 0)
			return;
		why = iev->why[0] != '\0' ? iev->why : "malformed payload";
	}
	log_warnx("%s: refused %s: %s", iev->name,
	    imsg_type_name(imsg_get_type(imsg)), why);
	if (iev->refused != NULL)
		iev->refused(iev);
	imsgev_close(iev);
}

static void
imsgev_read(struct imsgev *iev)
{
	struct imsg	 imsg;
	ssize_t		 n;

	switch (imsgbuf_read(&iev->ibuf)) {
	case -1:
		if (errno == ERANGE) {
			/* A header whose length no message can have. */
			log_warnx("%s: message length out of range, closing "
			    "channel", iev->name);
			imsgev_close(iev);
		} else if (errno != EAGAIN && errno != EINTR) {
			log_warn("%s: read", iev->name);
			imsgev_close(iev);
		}
		return;
	case 0:
		log_debug("%s: channel closed by peer", iev->name);
		imsgev_close(iev);
		return;
	}
	while (iev->open) {
		if ((n = imsg_get(&iev->ibuf, &imsg)) == -1) {
			log_warn("%s: malformed message, closing channel",
			    iev->name);
			imsgev_close(iev);
			return;
		}
		if (n == 0)
			break;
		imsgev_deliver(iev, &imsg);
		imsg_free(&imsg);
	}
}

static void
imsgev_dispatch(evutil_socket_t fd, short events, void *arg)
{
	struct imsgev	*iev = arg;

	(void)fd;
	iev->dispatching = 1;
	if ((events & EV_WRITE) && iev->open &&
	    imsgbuf_write(&iev->ibuf) == -1 && errno != EAGAIN) {
		if (errno != EPIPE)
			log_warn("%s: write", iev->name);
		imsgev_close(iev);
	}
	if ((events & EV_READ) && iev->open)
		imsgev_read(iev);
	iev->dispatching = 0;
	if (iev->close_pending) {
		iev->close_pending = 0;
		if (iev->closed != NULL)
			iev->closed(iev);
		return;
	}
	imsgev_update(iev);
}
