/*
 * chain.h -- the ordered chain of credential checkers.
 */
#ifndef PORTCULLIS_CHAIN_H
#define PORTCULLIS_CHAIN_H

#include <sys/queue.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "proto.h"

struct worker_channel;
struct store;

/* One login attempt on its way through the chain. */
struct auth_ctx {
	TAILQ_ENTRY(auth_ctx)	 entry;		/* the channel's pending */
	struct worker_channel	*wc;		/* NULL: nobody waits */
	uint64_t		 req_id;
	uint64_t		 session_id;
	uint32_t		 mechanism;
	char			 client[64];
	char			 listener[64];
	char			 user[CONF_AUTH_NAME_MAX];	/* normalised */
	char			*password;
	size_t			 pwlen;
	struct timespec		 started;
	int			 next;		/* checker to ask next */
	int			 cancelled;	/* the session went away */
	struct checker		*current;	/* copy: reloads may come */
	int			 tempfail_seen;
	/* what the checker running now found, set on a pool thread */
	int			 result;
	char			 canonical[CONF_AUTH_NAME_MAX];
	const char		*why;		/* "locked", ... for the log */
};
TAILQ_HEAD(auth_ctxlist, auth_ctx);

/* A checker as the chain runs it. */
struct checker {
	struct checker_conf	*conf;
	uint32_t		 mechanisms;	/* what it verifies */
	struct store		*store;		/* lmdb */
	struct portcullis_conf	*pconf;		/* static: its users */
	/* runs on a pool thread: sets ctx->result and ctx->canonical */
	void			(*verify)(struct checker *, struct auth_ctx *);
};

int	chain_configure(struct portcullis_conf *);
void	chain_start(struct auth_ctx *);
void	chain_reject(struct auth_ctx *);
void	chain_ctx_free(struct auth_ctx *);
void	chain_retire_conf(struct portcullis_conf *);
void	chain_stats_foreach(void (*)(const char *, const unsigned long *,
	    void *), void *);
uint32_t chain_mechanisms(void);

/* checker_lmdb.c, checker_static.c */
int	checker_lmdb_init(struct checker *);
int	checker_static_init(struct checker *, struct portcullis_conf *);

#endif /* PORTCULLIS_CHAIN_H */
