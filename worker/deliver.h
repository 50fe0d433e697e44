/*
 * deliver.h -- how a worker hands an accepted message on.
 *
 * The session engine calls deliver_begin() when DATA starts, feeds
 * the message with deliver_write() as it streams in (already
 * dot-unstuffed, lines ending in CR LF, the Received header first),
 * and calls deliver_end() after the final dot.  The method then
 * answers exactly once through the done callback, with the reply the
 * client must get: 250 only once the message is durable (spool: after
 * the fsyncs) or the next hop said 250 (relay).  Nothing is
 * acknowledged that could still be lost.
 *
 * deliver_abort() is for a session that goes away or a message that is
 * refused (size, bare LF): it discards what was written, leaves
 * nothing half-delivered behind, and the callback is never called.
 */
#ifndef PORTCULLIS_DELIVER_H
#define PORTCULLIS_DELIVER_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "bounds.h"
#include "config.h"

struct envelope {
	uint64_t	 session_id;
	char		 sender[SMTP_PATH_MAX];		/* "" = null path */
	char		**rcpts;			/* addresses, no <> */
	size_t		 nrcpts;
	char		 auth_user[SMTP_PATH_MAX];	/* "" = none */
	char		 client_addr[64];		/* numeric */
	char		 helo[SMTP_PATH_MAX];
	int		 body_8bit;			/* BODY=8BITMIME */
	int		 smtputf8;			/* SMTPUTF8 */
};

/*
 * The reply for the client: code (250, 451, 554, ...), enhanced status
 * ("2.0.0"), and a text without CR or LF (it will be sanitised again).
 */
typedef void	(*deliver_done_cb)(void *arg, int code, const char *status,
		    const char *text);

struct delivery;

/* Called once per worker after the configuration arrived, before chroot. */
int		 deliver_init(struct event_base *, struct portcullis_conf *,
		    int spool_fd);

/* NULL: could not start; the caller answers 451 4.3.0, or 452 4.3.1
 * if deliver_no_space(errno). */
struct delivery	*deliver_begin(const struct envelope *, deliver_done_cb,
		    void *arg);
/* -1: the delivery failed already; the caller keeps reading the DATA
 * and then calls deliver_end(), which reports the failure. */
int		 deliver_write(struct delivery *, const void *, size_t);
void		 deliver_end(struct delivery *);
const char	*deliver_method(void);	/* "spool", for the metrics */
void		 deliver_abort(struct delivery *);

/*
 * Room in the spool for a message of the announced size (0: none)
 * above spool-min-free: 0 yes (and always for other methods), -1 no;
 * the caller answers 452 4.3.1 (RFC 1870, RFC 3463).  After a failed
 * deliver_begin(), deliver_no_space(errno) says whether it was that.
 */
int		 deliver_spool_room(uint64_t size);
int		 deliver_no_space(int error);

/*
 * Flow control for methods that stream (relay): the session stops
 * reading from its client while deliver_pending() is above
 * DELIVER_HIGH_WATER, and resumes when the method calls the resume
 * callback given here.
 */
#define DELIVER_HIGH_WATER	(256 * 1024)
size_t		 deliver_pending(struct delivery *);
void		 deliver_set_resume(struct delivery *, void (*)(void *));

#endif /* PORTCULLIS_DELIVER_H */
