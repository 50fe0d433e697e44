/*
 * master.h -- state shared by the files of portcullisd.
 */
#ifndef PORTCULLIS_MASTER_H
#define PORTCULLIS_MASTER_H

#include <sys/queue.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <limits.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>

#include "config.h"
#include "imsgev.h"

/*
 * Each worker its own listening socket where the kernel spreads
 * connections over a SO_REUSEPORT group (listen.c).
 */
#if defined(__linux__) && defined(SO_REUSEPORT)
#define LISTEN_PER_WORKER	1
#define LISTEN_SHARED_RESERVED	1	/* master's socket only holds */
#else
#define LISTEN_SHARED_RESERVED	0	/* master's socket is the one */
#endif

enum proc_role {
	ROLE_AUTHD,
	ROLE_WORKER,
	ROLE_METRICS,
	ROLE_KEYS,
};

struct child {
	TAILQ_ENTRY(child)	 entry;
	enum proc_role		 role;
	uint32_t		 id;		/* worker slot */
	uint32_t		 generation;	/* configuration it runs */
	pid_t			 pid;		/* -1 while not running */
	struct imsgev		 iev;
	char			 name[32];
	int			 ready;
	int			 retiring;	/* old generation, draining */
	unsigned int		 failures;	/* start-up deaths in a row */
	unsigned int		 restarts;
	int			 mismatch;	/* spoke another protocol */
	struct timespec		 started;
	struct timespec		 ready_at;
	struct event		*respawn_ev;
};
TAILQ_HEAD(childlist, child);

struct master {
	struct event_base	*base;
	struct portcullis_conf	*conf;
	const char		*conffile;
	int			 debug;
	int			 verbose;
	int			 privileged;	/* started as root */
	char			 libexec[PATH_MAX];
	uint32_t		 generation;
	struct child		*authd;
	struct child		*metrics;	/* NULL: no endpoint */
	int			 metrics_fd;	/* its listening socket */
	struct metrics_config	*metrics_conf;	/* what it is sent */
	struct child		*keys[KEY_PROCESSES_MAX]; /* key processes */
	unsigned int		 nkeys;		/* fixed at start */
	int			 keys_stopping;	/* CTL_SHUTDOWN sent */
	struct childlist	 workers;
	unsigned int		 restarts;	/* of every child */
	int			 spool_fd;
	struct event		*spool_sweep_ev;
	int			 control_fd;	/* authctl's socket */
	int			 shutting_down;
	int			 authd_stopping;	/* CTL_SHUTDOWN sent */
	struct event		*deadline_ev;
};

extern struct master	*master;

/* master.c */
void		 master_reload(void);

/* tickets.c */
void		 tickets_configure(const struct portcullis_conf *);
void		 tickets_send(struct child *);
void		 tickets_shutdown(void);

/* proc.c */
struct child	*child_new(enum proc_role, uint32_t id);
void		 child_start(struct child *);
void		 child_reap(void);
void		 child_free(struct child *);
int		 child_running(const struct child *);
void		 children_stop_workers(void);
const char	*child_role_name(enum proc_role);
void		 master_maybe_exit(void);

/* listen.c */
int		 listeners_open(struct portcullis_conf *,
		    struct portcullis_conf *old);
int		 listeners_worker(const struct portcullis_conf *, int *fds,
		    size_t nfds);
void		 listeners_close(int *fds, size_t nfds);
int		 spool_open(const struct portcullis_conf *);
void		 spool_sweep(int at_start);
void		 spool_sweep_owner(pid_t);
int		 users_check(const struct portcullis_conf *);
int		 chroot_check(const char *);
int		 stores_prepare(const struct portcullis_conf *);
int		 control_open(const struct portcullis_conf *);
int		 metrics_open(struct portcullis_conf *);

/* pki.c */
int		 pki_load(struct portcullis_conf *);
void		 pki_keys_wipe(struct portcullis_conf *);
void		 pki_keys_reread(struct portcullis_conf *);

/* keyproc.c */
int		 keyproc_configure(struct child *);
void		 keyproc_send_keys(struct portcullis_conf *);
void		 keyproc_start(int);
void		 keyproc_reload_note(const struct portcullis_conf *, int);
struct child	*keyproc_by_pid(pid_t);
int		 keyproc_running(void);
void		 keyproc_stop(int);
void		 keyproc_channel_create(struct child *);
void		 keyproc_ready(struct child *);

/* secret.c */
int		 secrets_load(struct portcullis_conf *);
struct metrics_config;
int		 metrics_token_load(const struct portcullis_conf *,
		    struct metrics_config *);

#endif /* PORTCULLIS_MASTER_H */
