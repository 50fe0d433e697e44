/*
 * smtp_reply.h -- reading a server's SMTP reply (RFC 5321 4.2), for
 * the relay: a parser without I/O, fed one line at a time.
 */
#ifndef PORTCULLIS_SMTP_REPLY_H
#define PORTCULLIS_SMTP_REPLY_H

#include <stddef.h>

#include "bounds.h"

/* The reply being read, and once complete, the reply. */
struct smtp_reply {
	int		 code;		/* of the first line */
	int		 lines;		/* read so far; 0 once complete */
	char		 status[16];	/* enhanced status, "" if none */
	char		 text[SMTP_REPLY_TEXT_MAX];	/* lines joined by " " */
	size_t		 textlen;
};

#define SMTP_REPLY_ERROR	-1	/* not SMTP: give up on the peer */
#define SMTP_REPLY_MORE		0	/* more lines to come */
#define SMTP_REPLY_DONE		1	/* the reply is complete */

int	smtp_reply_feed(struct smtp_reply *, const char *line, size_t len,
	    const char **text);
int	smtp_reply_pending(size_t buffered);
size_t	smtp_reply_status_len(const char *text, int class);

#endif /* PORTCULLIS_SMTP_REPLY_H */
