/*
 * fleet.h -- the counters behind penalties and sending limits, and
 * where they live: this node's tables (fleet.c), and Redis when the
 * configuration says "state redis" (fleet_redis.c), so that every node
 * of a fleet sees the same ones.
 */
#ifndef PORTCULLIS_FLEET_H
#define PORTCULLIS_FLEET_H

#include <sys/queue.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>

#include "config.h"
#include "proto.h"

/*
 * Everything authd counts about penalties, limits and the state
 * store, in one place: authctl stats prints them by name
 * (fleet_counter_names[]), and so will a metrics exporter.
 */
struct fleet_counters {
	uint64_t	auth_failures;		/* failed attempts judged */
	uint64_t	auth_delayed;		/* answered after a delay */
	uint64_t	auth_repeats;		/* a wrong password again: no
						   growth */
	uint64_t	auth_trusted;		/* from trusted-networks: no
						   address penalty */
	uint64_t	account_locks;		/* accounts that reached the
						   limit */
	uint64_t	account_refused;	/* attempts refused unchecked */
	uint64_t	account_known_passed;	/* from a known address,
						   through a lock */
	uint64_t	limit_recipients_refused;
	uint64_t	limit_messages_refused;
	uint64_t	limit_tempfail;		/* no answer: fail-closed */
	uint64_t	limit_locks;		/* accounts locked for going
						   on over their limit */
	uint64_t	limit_lock_refused;	/* logins refused for it */
	uint64_t	state_shared;		/* answered by Redis */
	uint64_t	state_local;		/* by this node: Redis down */
	uint64_t	state_errors;		/* Redis errors and timeouts */
	uint64_t	state_outages;		/* times Redis went away */
	uint64_t	state_reconnects;	/* times it came back */
	uint64_t	table_evictions;	/* local tables full */
};
extern struct fleet_counters fleet_counters;

struct fleet_counter_name {
	const char	*name;
	size_t		 offset;
};
extern const struct fleet_counter_name fleet_counter_names[];

enum fleet_op {
	FLEET_CHECK = 1,	/* an account's failures, known address? */
	FLEET_FAIL,		/* one more failure */
	FLEET_OK,		/* a login: address cleared, known */
	FLEET_LIMIT,		/* may count more be sent? */
};

/* One question to the counters; done() is called exactly once. */
struct fleet_req {
	TAILQ_ENTRY(fleet_req)	 entry;		/* fleet_redis.c's */
	enum fleet_op		 op;
	char			 addr[64];	/* the penalty key; "" none */
	char			 user[CONF_AUTH_NAME_MAX];	/* "" none */
	/* FLEET_FAIL */
	int			 grow_addr;
	int			 count_account;
	/* FLEET_LIMIT: the account's limit (the user's own or the
	   default) and the address's (the default) */
	enum limit_kind		 kind;
	uint32_t		 n;
	uint32_t		 max;		/* 0: no limit */
	int			 window;	/* seconds */
	uint32_t		 addr_max;	/* 0: no limit */
	int			 addr_window;
	int			 lock_after;	/* refusals; 0: never */
	int			 lock_for;	/* seconds */
	/* answers */
	uint32_t		 addr_count;
	uint32_t		 account_count;
	int			 known;
	int			 over;		/* LIMIT: 1 account, 2 address */
	uint32_t		 refusals;	/* LIMIT: the account's, with
						   lock_after */
	int			 hard;		/* CHECK: locked by its limit */
	int			 shared;	/* Redis answered */
	int			 failed;	/* nobody could: fail-closed */
	/* the caller's */
	void			(*done)(struct fleet_req *);
	void			*arg;
	/* fleet_redis.c's */
	struct event		*timer;
	int			 abandoned;
};

/* fleet.c */
void	fleet_configure(const struct portcullis_conf *);
void	fleet_submit(struct fleet_req *);
void	fleet_local(struct fleet_req *);
void	fleet_local_limit_undo(const struct fleet_req *);
int	fleet_repeat(const char *user, const char *addr, const char *secret,
	    size_t len);
void	fleet_list(const char *what, void (*row)(const struct ctl_penalty *,
	    void *), void *arg);
uint32_t fleet_clear(const char *what);
uint32_t fleet_delay(const struct portcullis_conf *, uint32_t failures);
void	fleet_lock_note(const char *user, time_t until);
void	fleet_lock_drop(const char *user);
void	fleet_sendlock(const struct fleet_req *, time_t until);

/* fleet_redis.c */
void	fleet_redis_configure(const struct portcullis_conf *);
int	fleet_redis_usable(void);
int	fleet_redis_informed(void);
void	fleet_redis_submit(struct fleet_req *);
int	fleet_redis_configured(void);
int	fleet_redis_list(const char *what, uint32_t max,
	    void (*row)(const struct ctl_penalty *, void *),
	    void (*done)(void *, int), void *arg);
int	fleet_redis_clear(const char *what, void (*done)(void *, long long),
	    void *arg);
void	fleet_redis_lock_news(const char *user, time_t until);

/* lockmsg.c: "L UNTIL USER" or "U USER"; 'L', 'U' or -1 */
int	lockmsg_parse(const char *, size_t, char *user, size_t userlen,
	    int64_t *until);

/* penalty.c */
void	penalty_key(const char *client, int prefix6, char *key, size_t len);
int	penalty_trusted(const struct portcullis_conf *, const char *client);

#endif /* PORTCULLIS_FLEET_H */
