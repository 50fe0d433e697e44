/*
 * smtp_reply.c -- a parser for the replies of an SMTP or LMTP server
 * (RFC 5321 4.2, RFC 2033 4.2), without I/O: the relay reads lines
 * from its connection and feeds them here one by one.
 *
 * A reply is one or more lines "DDD-text" ending with "DDD text" or
 * "DDD" (RFC 5321 4.2.1), all with the same code.  The enhanced status
 * code (RFC 3463, RFC 2034) of the first line is kept when its class
 * is the reply's; the texts of all lines are kept, joined by a space
 * and cut at SMTP_REPLY_TEXT_MAX.  Anything else is not SMTP, and so
 * are more than SMTP_REPLY_LINES_MAX lines, or a line still without
 * its end after SMTP_REPLY_LINE_MAX octets (RFC 5321 4.5.3.1.5 allows
 * 512; servers are known to send longer ones): the caller gives up on
 * the peer rather than keep reading.
 */

#include <ctype.h>
#include <string.h>

#include "smtp_reply.h"

/* "4.2.1 " at the start of a reply text of class 4: its length, or 0. */
size_t
smtp_reply_status_len(const char *text, int class)
{
	const char	*p = text;
	int		 part, digits;

	if (*p++ != '0' + class)
		return 0;
	for (part = 0; part < 2; part++) {
		if (*p++ != '.')
			return 0;
		for (digits = 0; isdigit((unsigned char)*p); digits++)
			p++;
		if (digits < 1 || digits > 3)
			return 0;
	}
	if (*p != ' ' && *p != '\0')
		return 0;
	return p - text;
}

/* "DDD", "DDD text" or "DDD-text", the first digit 2 to 5: the code. */
static int
reply_code(const char *line, size_t len)
{
	if (len < 3 || line[0] < '2' || line[0] > '5' ||
	    !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]) ||
	    (len > 3 && line[3] != ' ' && line[3] != '-') ||
	    memchr(line, '\0', len) != NULL)
		return -1;
	return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

/* The text of one line, its enhanced status taken off. */
static const char *
reply_text(struct smtp_reply *rp, const char *text)
{
	size_t	 n;

	if ((n = smtp_reply_status_len(text, rp->code / 100)) == 0)
		return text;
	if (rp->lines == 0 && n < sizeof(rp->status)) {
		memcpy(rp->status, text, n);
		rp->status[n] = '\0';
	}
	text += n;
	while (*text == ' ')
		text++;
	return text;
}

static void
reply_text_add(struct smtp_reply *rp, const char *text)
{
	if (*text == '\0' || rp->textlen + 2 >= sizeof(rp->text))
		return;
	if (rp->textlen > 0)
		rp->text[rp->textlen++] = ' ';
	rp->textlen += strlcpy(rp->text + rp->textlen, text,
	    sizeof(rp->text) - rp->textlen);
	if (rp->textlen >= sizeof(rp->text))
		rp->textlen = sizeof(rp->text) - 1;
}

/*
 * One line, without its CR LF, NUL-terminated at line[len].  *text,
 * if text is not NULL, gets the line's text after the code and the
 * enhanced status (for the EHLO keywords).  rp starts zeroed, and
 * after SMTP_REPLY_DONE the next line starts the next reply.
 */
int
smtp_reply_feed(struct smtp_reply *rp, const char *line, size_t len,
    const char **text)
{
	const char	*t;
	int		 code;

	if ((code = reply_code(line, len)) == -1)
		return SMTP_REPLY_ERROR;
	if (rp->lines == 0) {
		memset(rp, 0, sizeof(*rp));
		rp->code = code;
	} else if (code != rp->code || rp->lines >= SMTP_REPLY_LINES_MAX)
		return SMTP_REPLY_ERROR;
	t = reply_text(rp, len > 4 ? line + 4 : "");
	if (text != NULL)
		*text = t;
	reply_text_add(rp, t);
	rp->lines++;
	if (len > 3 && line[3] == '-')
		return SMTP_REPLY_MORE;
	rp->lines = 0;
	return SMTP_REPLY_DONE;
}

/* No whole line yet, and buffered octets waiting: still SMTP? */
int
smtp_reply_pending(size_t buffered)
{
	return buffered > SMTP_REPLY_LINE_MAX ? SMTP_REPLY_ERROR :
	    SMTP_REPLY_MORE;
}
