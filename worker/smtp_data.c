/*
 * smtp_data.c -- the DATA byte filter.
 *
 * The message ends only at CR LF . CR LF (RFC 5321 4.1.1.4), where
 * both line ends are real CR LF pairs.  A CR or LF on its own is never
 * a line end for that purpose, whatever the configuration says about
 * it, so "\n.\n", "\r.\r", "\n.\r\n" and "\r\n.\n" inside a message
 * cannot split it in two: that is what SMTP smuggling relies on.
 * Bare CR and LF are flagged (the message is then refused) or
 * rewritten to CR LF in the content.  A leading dot is removed from
 * every line that has one (RFC 5321 4.5.2).  Lines over 1000 octets
 * and NUL octets are flagged; the size is counted on the unstuffed
 * message and nothing past the limit is produced, so memory does not
 * grow with what a client sends.
 */

#include <string.h>

#include "smtp_data.h"

void
data_filter_init(struct data_filter *df, int normalize, uint64_t max_size)
{
	memset(df, 0, sizeof(*df));
	df->normalize = normalize;
	df->max_size = max_size;
	df->bol = 1;
	df->bol_crlf = 1;
}

struct out {
	struct data_filter	*df;
	uint8_t			*buf;
	size_t			 len;
};

static void
emit(struct out *o, uint8_t c)
{
	struct data_filter	*df = o->df;

	if (df->size >= df->max_size) {
		df->flags |= DATA_TOO_BIG;
		return;
	}
	df->size++;
	o->buf[o->len++] = c;
}

/* A line ended: by CR LF (crlf) or by a bare CR or LF. */
static void
line_end(struct out *o, int crlf)
{
	struct data_filter	*df = o->df;

	if (crlf || df->normalize) {
		emit(o, '\r');
		emit(o, '\n');
	}
	df->line_len = 0;
	df->bol = 1;
	df->bol_crlf = crlf;
	df->dot = 0;
}

/* A CR or LF that is not part of a CR LF pair. */
static void
bare_newline(struct out *o, uint8_t c)
{
	struct data_filter	*df = o->df;

	if (df->dot)
		emit(o, '.');
	if (!df->normalize) {
		df->flags |= DATA_BARE_NEWLINE;
		emit(o, c);
	}
	line_end(o, 0);
}

static void
octet(struct out *o, uint8_t c)
{
	struct data_filter	*df = o->df;

	if (df->bol && c == '.') {
		/* Held back: stuffing to drop, or the end of data. */
		df->dot = 1;
		df->bol = 0;
		df->line_len = 1;
		return;
	}
	/* Whatever follows the held dot, that dot was stuffing. */
	df->dot = 0;
	df->bol = 0;
	if (c == '\0')
		df->flags |= DATA_NUL;
	if (++df->line_len > SMTP_TEXT_LINE_MAX - 2)
		df->flags |= DATA_LINE_TOO_LONG;
	emit(o, c);
}

size_t
data_filter_feed(struct data_filter *df, const uint8_t *in, size_t inlen,
    uint8_t *out, size_t *outlen)
{
	struct out	 o = { df, out, 0 };
	size_t		 i;
	uint8_t		 c;

	for (i = 0; i < inlen && !df->done; i++) {
		c = in[i];
		if (df->cr) {
			df->cr = 0;
			if (c == '\n') {
				if (df->dot && df->bol_crlf) {
					df->done = 1;
					continue;
				}
				if (df->dot)
					emit(&o, '.');
				line_end(&o, 1);
				continue;
			}
			bare_newline(&o, '\r');
		}
		if (c == '\r')
			df->cr = 1;
		else if (c == '\n')
			bare_newline(&o, '\n');
		else
			octet(&o, c);
	}
	*outlen = o.len;
	return i;
}
