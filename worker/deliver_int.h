/*
 * deliver_int.h -- what the delivery methods share; private to
 * deliver*.c and the unit tests.
 *
 * deliver.c keeps the state deliver_init() was given and dispatches
 * each call to the configured method.  Every method's own delivery
 * struct starts with a struct delivery, so a pointer to one is a
 * pointer to the other (C11 6.7.2.1p15).
 */
#ifndef PORTCULLIS_DELIVER_INT_H
#define PORTCULLIS_DELIVER_INT_H

#include "deliver.h"

struct deliver_ops {
	const char	 *name;
	int		(*init)(void);
	void		(*cleanup)(void);
	struct delivery	*(*begin)(const struct envelope *, deliver_done_cb,
			    void *);
	int		(*write)(struct delivery *, const void *, size_t);
	void		(*end)(struct delivery *);
	void		(*abort)(struct delivery *);
	size_t		(*pending)(struct delivery *);
};

/* The head of every method's delivery. */
struct delivery {
	const struct deliver_ops *ops;
	uint64_t	 session_id;
	deliver_done_cb	 done;		/* NULL once called or cancelled */
	void		*arg;
	void		(*resume)(void *);
};

struct deliver_env {
	struct event_base	*base;
	struct portcullis_conf	*conf;
	int			 spool_fd;	/* not ours: master's */
	int			 tmp_fd;	/* spool: tmp/, -1 otherwise */
	int			 new_fd;	/* spool: new/, -1 otherwise */
};

extern struct deliver_env	 deliver_env;

extern const struct deliver_ops	 deliver_spool_ops;
extern const struct deliver_ops	 deliver_console_ops;
extern const struct deliver_ops	 deliver_relay_ops;

/* deliver.c */
void	 deliver_head_init(struct delivery *, const struct deliver_ops *,
	    const struct envelope *, deliver_done_cb, void *);
void	 deliver_done(struct delivery *, int, const char *, const char *);
void	 deliver_finish(struct delivery *, void *, int, const char *,
	    const char *);
size_t	 deliver_sanitise(char *, size_t, const char *);

/*
 * Relay timeouts in seconds (RFC 5321 4.5.3.2 gives 5 minutes for
 * every reply); variables only so that the unit tests can shorten them.
 */
extern int	 relay_connect_timeout;
extern int	 relay_reply_timeout;
extern int	 relay_quit_timeout;
extern int	 relay_active;		/* relays not yet freed */

#endif /* PORTCULLIS_DELIVER_INT_H */
