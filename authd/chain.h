/*
 * chain.h -- the ordered chain of credential checkers, and the one
 * interface every type of checker offers it (struct checker_ops).
 */
#ifndef PORTCULLIS_CHAIN_H
#define PORTCULLIS_CHAIN_H

#include <sys/queue.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "bounds.h"
#include "config.h"
#include "mech.h"
#include "proto.h"

struct worker_channel;
struct store;
struct checker;

/*
 * What the checker that decided found besides its result, for the
 * observers (the cache): set by the checker, read on the loop.
 */
struct auth_found {
	int64_t			 expires;	/* the credential's own end;
						   0: it did not say */
	char			 scope[CONF_HOST_MAX];	/* a token's */
	int			 refused;	/* fail: the backend refused
						   this very secret (not a
						   malformed request) */
	/* ok: the addresses the user may send as, each NUL-ended */
	char			 addrs[AUTH_ADDRS_BYTES];
	size_t			 addrs_len;
};

/*
 * What one checker may leave for the rest of the attempt (the cache
 * does): checkers not to ask, and an answer for those that tempfail.
 */
struct auth_hints {
	uint32_t		 skip;		/* checker indexes */
	uint32_t		 fallback;	/* checker indexes whose
						   tempfail becomes ok */
	char			 fallback_user[CONF_AUTH_NAME_MAX];
	struct auth_found	 fallback_found;	/* its addresses */
	char			 fallback_by[CONF_NAME_MAX];	/* audited */
	const char		*fallback_tag;	/* "stale": stale=yes */
	int			 answered;	/* the fallback answered */
};

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
	int			 observing;	/* observers told so far */
	/* what the checker running now found (set on a pool thread) */
	int			 result;
	char			 canonical[CONF_AUTH_NAME_MAX];
	const char		*why;		/* "locked", ... for the log */
	struct auth_found	 found;
	struct auth_hints	 hints;
	void			*job;		/* the running checker's own
						   per-attempt state */
	/* the verdict, once decided, while penalty.c counts it */
	int			 verdict;
	char			 verdict_by[CONF_NAME_MAX];	/* "": none */
	uint32_t		 delay_ms;	/* fail: the worker waits */
	int			 repeat;	/* a wrong password again */
	int			 penalty_busy;	/* penalty.c asks the state */
	void			(*job_free)(void *);	/* if it must be
						   freed with the ctx */
	char			 app_label[40];	/* the app password that
						   logged in, audited */
	int			 send_only;	/* it is a send-only one */
	int			 control;	/* authctl test, not a worker:
						   no mail will be sent */
	char			 server_final[64];	/* SCRAM: "v=..." to send
						   with the ok */
	/* a cache checker's lookup ("hit", "miss", "negative"), set on
	   its pool thread, counted on the loop by chain.c */
	const char		*lookup;
};
TAILQ_HEAD(auth_ctxlist, auth_ctx);

/*
 * What a checker may keep beyond one check (a provider's connections,
 * the cache's key): counted, because a check in flight keeps using it
 * after a reload replaced the checker.  Freed by its ops->free.
 */
struct checker_priv {
	int			 refs;
};

/*
 * A type of checker.  One per checker_*.c, listed in checkers.c; the
 * chain knows no type by name.
 */
struct checker_ops {
	const char	*name;		/* "lmdb", as in portcullis.conf */
	uint32_t	 kinds;		/* CRED_* it verifies; the mechanisms
					   follow (mech_of_kinds) */
	int		 cacheable;	/* the cache may remember its
					   verdicts: a remote provider yes,
					   a local store no */
	/* Set up c from c->conf, at every configuration.  -1: fatal. */
	int		(*init)(struct checker *c, struct portcullis_conf *);
	/*
	 * Begin one check, on the loop, with ctx->result AUTH_TEMPFAIL;
	 * call chain_checker_done(ctx) once decided (from start itself
	 * if it need not wait).  checker_pool_start runs verify on the
	 * hash pool.
	 */
	void		(*start)(struct checker *c, struct auth_ctx *);
	/* For checker_pool_start: runs on a pool thread. */
	void		(*verify)(struct checker *c, struct auth_ctx *);
	/*
	 * Optional: stop a started check nobody waits for; it must not
	 * call chain_checker_done any more.  Without it, a check runs to
	 * its end and the chain drops the attempt then.
	 */
	void		(*cancel)(struct checker *c, struct auth_ctx *);
	/*
	 * Optional: told every verdict (ok or fail) of a cacheable
	 * checker, on the loop, before the client hears it.  1: busy,
	 * calls then(ctx) once done; 0: done.
	 */
	int		(*observe)(struct checker *self,
			    const struct checker *decided, struct auth_ctx *,
			    void (*then)(struct auth_ctx *));
	/* Optional: one line of its state, for the log or authctl. */
	void		(*stats)(const struct checker *c, char *buf,
			    size_t len);
	/*
	 * Optional, for authctl (control.c): each key the checker trusts,
	 * given to row() one by one, on the loop.
	 */
	void		(*keys)(const struct checker *c,
			    void (*row)(const struct ctl_key *, void *),
			    void *arg);
	/*
	 * Optional, for authctl: fetch the keys (and what they depend on)
	 * now; done() once with the outcome, later, on the loop, also when
	 * a reload retires the checker first; at once with NULL when it
	 * has no keys to fetch.
	 */
	void		(*refresh)(const struct checker *c,
			    void (*done)(void *arg,
			    const struct ctl_refreshed *), void *arg);
	/* Optional: free what init put in c->priv, once unreferenced. */
	void		(*free)(struct checker_priv *);
	/*
	 * Optional, for the metrics: 1 if it can decide now, 0 if its
	 * backend is down; *breaker 1 while its circuit is open.
	 * Without it a checker is up.
	 */
	int		(*health)(const struct checker *c, int *breaker);
};

/* A checker as the chain runs it. */
struct checker {
	const struct checker_ops *ops;
	struct checker_conf	*conf;
	int			 index;		/* in the chain */
	uint32_t		 mechanisms;	/* what it verifies */
	struct store		*store;		/* lmdb, cache */
	struct portcullis_conf	*pconf;		/* the configuration */
	struct checker_priv	*priv;		/* oauth, cache */
};

int	chain_configure(struct portcullis_conf *);
void	chain_start(struct auth_ctx *);
void	chain_reject(struct auth_ctx *);
void	chain_decided(struct auth_ctx *, int result, const char *checker);
void	chain_cancel(struct auth_ctx *);
void	chain_ctx_free(struct auth_ctx *);
void	chain_retire_conf(struct portcullis_conf *);
void	chain_stats_foreach(void (*)(const char *, const unsigned long *,
	    void *), void *);
int	chain_checker_stats(int index, char *buf, size_t len);
void	chain_metrics_collect(void);
uint32_t chain_mechanisms(void);
void	chain_checker_done(struct auth_ctx *);
int	auth_found_addr(struct auth_found *, const char *);
void	chain_verdict(struct auth_ctx *);
void	chain_refuse(struct auth_ctx *, int result, const char *why);
int	chain_penalty_ended(struct auth_ctx *, const char *refused);

/* penalty.c */
void	penalty_before(struct auth_ctx *, void (*)(struct auth_ctx *,
	    const char *));
void	penalty_after(struct auth_ctx *, int result);
struct store *chain_store(const char *path);
const struct checker *chain_checkers(int *n);

/* checkers.c: the table of types */
const struct checker_ops *checker_ops_of(enum checker_type);
uint32_t checker_conf_mechanisms(const struct checker_conf *);
int	checker_register(enum checker_type, const struct checker_ops *);
void	checker_pool_start(struct checker *, struct auth_ctx *);

/* checker_*.c */
extern const struct checker_ops checker_lmdb_ops;
extern const struct checker_ops checker_static_ops;
extern const struct checker_ops checker_oauth_ops;
extern const struct checker_ops checker_cache_ops;
extern const struct checker_ops checker_ldap_ops;
extern const struct checker_ops checker_sql_ops;

#endif /* PORTCULLIS_CHAIN_H */
