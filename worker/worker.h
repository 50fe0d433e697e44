/*
 * worker.h -- state shared by the files of portcullis-worker.
 */
#ifndef PORTCULLIS_WORKER_H
#define PORTCULLIS_WORKER_H

#include <sys/queue.h>
#include <sys/tree.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>
#include <event2/bufferevent.h>
#include <openssl/ssl.h>

#include "bounds.h"
#include "config.h"
#include "deliver.h"
#include "imsgev.h"
#include "proto.h"
#include "smtp_data.h"

enum smtp_state {
	STATE_TLS_ACCEPT,	/* implicit TLS: handshake before greeting */
	STATE_INIT,		/* greeted, no HELO/EHLO yet */
	STATE_HELO,		/* ready for MAIL */
	STATE_MAIL,		/* MAIL accepted, RCPT expected */
	STATE_RCPT,		/* at least one RCPT */
	STATE_DATA,		/* reading the message */
	STATE_DATA_DONE,	/* waiting for the delivery's answer */
	STATE_AUTH,		/* reading SASL responses */
	STATE_AUTH_WAIT,	/* waiting for authd, or a failure delay */
	STATE_LIMIT_WAIT,	/* RCPT: authd counts the recipient */
	STATE_QUIT,
};

/* Sessions per client address, for the per-address limit. */
struct addr_count {
	RB_ENTRY(addr_count)	 entry;
	char			 addr[64];
	unsigned int		 count;
};

struct session {
	TAILQ_ENTRY(session)	 entry;
	RB_ENTRY(session)	 auth_entry;	/* while authd decides */
	struct bufferevent	*bev;
	struct listener		*listener;
	struct addr_count	*ac;
	struct event		*timer;
	uint64_t		 id;
	time_t			 started;
	enum smtp_state		 state;
	int			 closing;
	int			 discarding;	/* rest of an overlong line */
	int			 processing;	/* in session_process() */
	int			 linger;	/* closing: waits for output */
	int			 output_blocked; /* client is not reading */
	int			 esmtp;
	int			 tls;		/* TLS is up */
	SSL			*tls_pending;	/* STARTTLS: once the 220 is out */
	struct tls_accept	*tls_accept;	/* the handshake, under way */
	char			 tls_desc[96];
	unsigned int		 errors;
	unsigned int		 messages;
	char			 client_addr[64];
	char			 helo[SMTP_PATH_MAX];
	char			 auth_user[SMTP_PATH_MAX];	/* "" = none */
	char			*auth_addrs;	/* its other addresses, each
						   NUL-ended; NULL: none */
	size_t			 auth_addrs_len;
	uint64_t		 auth_req_id;
	uint32_t		 auth_mech;	/* SASL_* in progress */
	enum smtp_state		 auth_prev;	/* state to go back to */
	unsigned int		 auth_failures;
	char			*auth_login_user; /* LOGIN: first answer */
	int			 auth_challenged; /* token refused, 334 sent */
	int			 auth_scram_step; /* SCRAM: 1 server-first
						     sent, 2 server-final */
	struct auth_verdict	*auth_scram_ok;	/* 2: the verdict, given
						   once the client answers */
	char			*auth_scram_addrs;	/* 2: the addresses with it */
	struct event		*auth_delay;
	RB_ENTRY(session)	 limit_entry;	/* while authd counts */
	uint64_t		 limit_req_id;
	int			 limit_kind;
	void			(*limit_then)(struct session *, int);
	char			 limit_which[16];	/* who is over */
	char			*limit_rcpt;	/* RCPT waiting for it */
	enum smtp_state		 limit_prev;
	int			 auth_tempfail;	/* the delay ends in 454 */
	struct envelope		 env;
	size_t			 rcpt_cap;
	struct data_filter	 df;
	struct delivery		*delivery;
	struct timespec		 data_end;	/* for the delivery's time */
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
void	session_reply(struct session *, const char *, ...)
	    __attribute__((__format__ (printf, 2, 3)));
void	session_close_after(struct session *, const char *, ...)
	    __attribute__((__format__ (printf, 2, 3)));
void	session_timer_reset(struct session *);
void	session_starttls(struct session *);
void	session_resume(struct session *);
void	session_start(int fd, struct listener *, const char *host,
	    const char *via);
void	smtp_reply_error(struct session *, const char *, ...)
	    __attribute__((__format__ (printf, 2, 3)));
void	smtp_transaction_reset(struct session *);

/* smtp_proxy.c */
void	proxy_wait_start(int fd, struct listener *,
	    const struct sockaddr_storage *, const char *host);
void	proxy_wait_close_all(void);
unsigned int proxy_waiting(void);

/* smtp_cmd.c */
void	smtp_command(struct session *, char *line);
int	smtp_is_local_domain(const char *addr);

/* smtp_auth.c */
void	smtp_auth_command(struct session *, char *arg);
const char *smtp_auth_policy(struct session *);
void	smtp_auth_response(struct session *, char *line);
int	smtp_auth_verdict(struct imsgev *, struct imsg *);
void	smtp_auth_scram_challenge(struct imsg *);
void	smtp_auth_scram_ok(struct imsg *);
void	smtp_auth_authd_lost(void);
void	smtp_auth_session_gone(struct session *);
const char *smtp_auth_mechanisms(struct session *);

/* smtp_limit.c */
int	smtp_limit_ask(struct session *, enum limit_kind, uint32_t,
	    void (*)(struct session *, int));
void	smtp_limit_refused(struct session *, enum limit_kind, const char *);
void	smtp_limit_verdict(struct imsg *);
void	smtp_limit_authd_lost(void);
void	smtp_limit_session_gone(struct session *);

/* smtp_message.c */
int	smtp_mail_room(struct session *, uint64_t size);
void	smtp_data_start(struct session *);
void	smtp_data_input(struct session *);
void	smtp_data_done(void *, int, const char *, const char *);

/* worker.c */
void	worker_session_gone(void);

#endif /* PORTCULLIS_WORKER_H */
