/*
 * authd.h -- state shared by the files of portcullis-authd.
 */
#ifndef PORTCULLIS_AUTHD_H
#define PORTCULLIS_AUTHD_H

#include <sys/queue.h>
#include <stddef.h>
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

/* request.c: what a well-formed IMSG_AUTH_REQUEST carries */
struct auth_cred {
	const uint8_t	*authzid;	/* password mechanisms; may be empty */
	size_t		 authzid_len;
	const uint8_t	*user;		/* tokens: empty when none named */
	size_t		 user_len;	/* < CONF_AUTH_NAME_MAX */
	const uint8_t	*secret;	/* the password, or the bearer token */
	size_t		 secret_len;	/* > 0 */
};

/*
 * 0 with req and cred filled (cred points into the imsg), or -1 for a
 * request that is malformed in any way.
 */
int	auth_request_decode(struct imsg *, struct auth_request *,
	    struct auth_cred *);

/* limit.c */
int	limit_request(struct worker_channel *, struct imsg *);
/* scram.c: the SCRAM exchange (IMSG_SCRAM_*) */
struct store_scram;
int	scram_start(struct worker_channel *, struct imsg *);
int	scram_final(struct worker_channel *, struct imsg *);
int	scram_abandon(struct auth_ctx *);
int	scram_proof_check(const struct store_scram *, const uint8_t *authmsg,
	    size_t len, const uint8_t *proof, uint8_t *sig);

/* control.c */
void	control_init(int fd);

#endif /* PORTCULLIS_AUTHD_H */
