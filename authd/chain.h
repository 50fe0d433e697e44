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
	char			 user[CONF_AUTH_NAME_MAX];	/* normalised; for
							   tokens "" when the
							   client named none */
	char			*password;	/* or the bearer token */
	size_t			 pwlen;
	struct timespec		 started;
	int			 next;		/* checker to ask next */
	int			 cancelled;	/* the session went away */
	struct checker		*current;	/* copy: reloads may come */
	int			 tempfail_seen;
	/* what the checker running now found (set on a pool thread) */
	int			 result;
	char			 canonical[CONF_AUTH_NAME_MAX];
	const char		*why;		/* "locked", ... for the log */
	/* oauth, on ok: for the cache */
	int64_t			 token_exp;	/* 0: the token did not say */
	char			 scope[CONF_HOST_MAX];
	/* the cache: what it found that the chain may still use */
	uint32_t		 skip;		/* checker indexes not to ask */
	uint32_t		 stale;		/* whose tempfail a stale entry
						   answers */
	char			 stale_user[CONF_AUTH_NAME_MAX];
	int			 answered_stale;
	void			*job;		/* the async checker's */
	int			 refused;	/* the provider said no to
						   this password */
	int			 remembered;	/* the cache has the verdict */
	int			 retried;	/* oauth: after a JWKS refresh */
};
TAILQ_HEAD(auth_ctxlist, auth_ctx);

/*
 * What a checker may keep beyond one check (a provider's connections,
 * the cache's key): counted, because a check in flight keeps using it
 * after a reload replaced the checker.
 */
struct checker_priv {
	int			 refs;
	void			(*free)(struct checker_priv *);
};

/* A checker as the chain runs it. */
struct checker {
	struct checker_conf	*conf;
	int			 index;		/* in the chain */
	uint32_t		 mechanisms;	/* what it verifies */
	struct store		*store;		/* lmdb, cache */
	struct portcullis_conf	*pconf;		/* static: its users */
	struct checker_priv	*priv;		/* oauth, cache */
	/* runs on a pool thread: sets ctx->result and ctx->canonical */
	void			(*verify)(struct checker *, struct auth_ctx *);
	/* or runs on the loop and calls chain_checker_done() later */
	void			(*start)(struct checker *, struct auth_ctx *);
};

int	chain_configure(struct portcullis_conf *);
void	chain_start(struct auth_ctx *);
void	chain_reject(struct auth_ctx *);
void	chain_ctx_free(struct auth_ctx *);
void	chain_retire_conf(struct portcullis_conf *);
void	chain_stats_foreach(void (*)(const char *, const unsigned long *,
	    void *), void *);
uint32_t chain_mechanisms(void);
void	chain_checker_done(struct auth_ctx *);
struct store *chain_store(const char *path);
const struct checker *chain_checkers(int *n);

/* checker_*.c */
int	checker_lmdb_init(struct checker *);
int	checker_static_init(struct checker *, struct portcullis_conf *);
int	checker_oauth_init(struct checker *);
int	checker_cache_init(struct checker *, struct portcullis_conf *);
/* the cache learns what an oauth checker said (on the loop) */
int	cache_remember(struct checker *cache, const struct checker *oauth,
	    struct auth_ctx *, int result, void (*then)(struct auth_ctx *));

#endif /* PORTCULLIS_CHAIN_H */
