/*
 * worker.h -- state shared by the files of portcullis-worker.
 */
#ifndef PORTCULLIS_WORKER_H
#define PORTCULLIS_WORKER_H

#include <sys/queue.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/bufferevent.h>

#include "config.h"
#include "imsgev.h"

struct session {
	TAILQ_ENTRY(session)	 entry;
	struct bufferevent	*bev;
	struct listener		*listener;
	uint64_t		 id;
	int			 closing;
};
TAILQ_HEAD(sessionlist, session);

struct worker {
	struct event_base	*base;
	struct portcullis_conf	*conf;
	int			 spool_fd;
	uint32_t		 id;
	struct imsgev		 master;
	struct imsgev		 authd;
	uint64_t		 ping_seq;
	struct timespec		 ping_sent;
	struct sessionlist	 sessions;
	unsigned int		 nsessions;
	int			 shutting_down;
	struct event		*grace_ev;
};

extern struct worker	*worker;

/* smtp_session.c */
void	smtp_listen_start(void);
void	smtp_listen_stop(void);
void	smtp_listen_close(void);
void	smtp_close_all(const char *reply);
void	session_free(struct session *);

/* worker.c */
void	worker_session_gone(void);

#endif /* PORTCULLIS_WORKER_H */
