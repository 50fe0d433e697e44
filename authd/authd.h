/*
 * authd.h -- state shared by the files of portcullis-authd.
 */
#ifndef PORTCULLIS_AUTHD_H
#define PORTCULLIS_AUTHD_H

#include <sys/queue.h>
#include <stdint.h>

#include <event2/event.h>

#include "chain.h"
#include "config.h"
#include "imsgev.h"

/* One channel per worker; a worker is hostile until proven otherwise. */
struct worker_channel {
	TAILQ_ENTRY(worker_channel)	 entry;
	struct imsgev			 iev;
	uint32_t			 worker_id;
	uint32_t			 generation;
	char				 name[32];
	struct auth_ctxlist		 pending;
	int				 control;	/* authctl, not a worker */
};
TAILQ_HEAD(channellist, worker_channel);

struct authd {
	struct event_base	*base;
	struct portcullis_conf	*conf;
	struct imsgev		 master;
	struct channellist	 channels;
	int			 dropped;	/* privileges already given up */
};

extern struct authd	*authd;

/* authd.c */
int	authd_auth_request(struct worker_channel *, struct imsg *);
void	authd_channel_free(struct worker_channel *);

/* control.c */
void	control_init(int fd);

/* chain.c */
void	authd_stats_count(const char *checker, int result);

#endif /* PORTCULLIS_AUTHD_H */
