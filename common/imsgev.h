/*
 * imsgev.h -- an imsg channel driven by a libevent loop.
 *
 * Every process talks to its peers through one of these: the channel
 * reads when the descriptor is readable, writes only while messages
 * are queued, and hands each complete message to the owner's handler.
 * A channel that reaches EOF, fails, or receives a malformed frame is
 * closed and reported once through the closed callback; it never
 * takes the process down, because the peer may be hostile.
 */
#ifndef PORTCULLIS_IMSGEV_H
#define PORTCULLIS_IMSGEV_H

#include <sys/types.h>
#include <sys/uio.h>
#include <stdint.h>
#include <event2/event.h>

#include "imsg.h"

struct imsgev;
typedef void	(*imsgev_handler)(struct imsgev *, struct imsg *);
typedef void	(*imsgev_closed)(struct imsgev *);

struct imsgev {
	struct imsgbuf		 ibuf;
	struct event		*ev;
	struct event_base	*base;
	imsgev_handler		 handler;
	imsgev_closed		 closed;
	void			*arg;
	const char		*name;		/* peer, for logs */
	short			 events;
	int			 open;
	int			 dispatching;
	int			 close_pending;
	/*
	 * If not 0: while more messages than this wait to be written, the
	 * channel reads nothing from its peer.  A peer that writes and
	 * never reads then fills its own socket buffer, not our memory.
	 */
	uint32_t		 wq_max;
};

int	imsgev_init(struct imsgev *, struct event_base *, int fd, int fdpass,
	    const char *name, imsgev_handler, imsgev_closed, void *arg);
int	imsgev_compose(struct imsgev *, uint32_t type, uint32_t peerid,
	    int fd, const void *data, size_t len);
int	imsgev_composev(struct imsgev *, uint32_t type, uint32_t peerid,
	    const struct iovec *, int);
void	imsgev_close(struct imsgev *);
int	imsgev_flush(struct imsgev *);

#endif /* PORTCULLIS_IMSGEV_H */
