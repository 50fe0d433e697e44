/*
 * config_imsg.h -- carry a struct portcullis_conf from master to a
 * child over imsg, one message per piece.
 */
#ifndef PORTCULLIS_CONFIG_IMSG_H
#define PORTCULLIS_CONFIG_IMSG_H

#include "config.h"
#include "imsgev.h"

/* What a child has received so far. */
struct config_recv {
	struct portcullis_conf	*conf;
	int			 spool_fd;	/* workers */
	int			 control_fd;	/* authd */
};

int	config_send(struct imsgev *, const struct portcullis_conf *,
	    int listener_fds, int spool_fd, int control_fd);
int	config_send_worker(struct imsgev *, const struct portcullis_conf *,
	    const int *own_listener_fds, int spool_fd);
int	config_recv(struct config_recv *, struct imsg *);
void	config_recv_reset(struct config_recv *);
void	config_close_fds(struct portcullis_conf *);

#endif /* PORTCULLIS_CONFIG_IMSG_H */
