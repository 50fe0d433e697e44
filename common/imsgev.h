/*
 * imsgev.h -- an imsg channel driven by a libevent loop.
 *
 * Every process talks to its peers through one of these: the channel
 * reads when the descriptor is readable, writes only while messages
 * are queued, and hands each complete message to the owner's handler.
 * A channel that reaches EOF, fails, or receives a malformed frame is
 * closed and reported once through the closed callback; it never
 * takes the process down, because the peer may be hostile.
 *
 * Every channel of the daemons has a dispatch table: the messages it
 * accepts from that peer in its present state, each with its payload
 * length and whether a descriptor comes with it.  Reading the tables
 * tells you what each peer may ask of each process.  imsgev.c checks
 * every message against the table before a handler sees it, and
 * refuses anything else in one place, with one policy: a log line
 * (peer, type, why), then the channel is closed.  A handler that finds
 * a payload wrong returns -1 (or imsgev_reject()) and the same policy
 * applies.  A raw handler (imsgev_init's) sees everything unchecked:
 * for tests only.
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
typedef int	(*imsg_dispatch_fn)(struct imsgev *, struct imsg *);

/* struct imsg_dispatch flags */
#define IMSGEV_MIN	0x01	/* len is a minimum: the payload varies */
#define IMSGEV_FD	0x02	/* a descriptor must come with it */
#define IMSGEV_FD_MAYBE	0x04	/* a descriptor may come with it */
#define IMSGEV_ONCE	0x08	/* at most once while the table holds */

/*
 * One message a channel accepts.  Without IMSGEV_FD or IMSGEV_FD_MAYBE
 * a descriptor must not come with it.  A table is an array ended by an
 * entry whose handler is NULL, of at most IMSGEV_TABLE_MAX entries.
 */
struct imsg_dispatch {
	uint32_t		 type;
	size_t			 len;
	int			 flags;
	imsg_dispatch_fn	 handler;
};
#define IMSGEV_TABLE_MAX	64

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
	/* What the peer may send now, and its IMSGEV_ONCE entries used. */
	const struct imsg_dispatch *table;
	uint64_t		 seen;
	/* After the refusal is logged, before the close (master: kill). */
	imsgev_closed		 refused;
	char			 why[192];	/* the refusal's reason */
};

int	imsgev_init(struct imsgev *, struct event_base *, int fd, int fdpass,
	    const char *name, imsgev_handler, imsgev_closed, void *arg);
int	imsgev_compose(struct imsgev *, uint32_t type, uint32_t peerid,
	    int fd, const void *data, size_t len);
int	imsgev_composev(struct imsgev *, uint32_t type, uint32_t peerid,
	    const struct iovec *, int);
void	imsgev_close(struct imsgev *);
int	imsgev_flush(struct imsgev *);
void	imsgev_set_table(struct imsgev *, const struct imsg_dispatch *);
int	imsgev_reject(struct imsgev *, const char *, ...)
	    __attribute__((__format__ (printf, 2, 3)));
void	imsgev_data(struct imsg *, void *, size_t);

#endif /* PORTCULLIS_IMSGEV_H */
