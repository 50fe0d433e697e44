/*
 * smtp_data.h -- the DATA byte filter: end-of-data detection,
 * dot-unstuffing, and the checks that close SMTP smuggling.
 */
#ifndef PORTCULLIS_SMTP_DATA_H
#define PORTCULLIS_SMTP_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "bounds.h"

/* what went wrong in a message; any of these refuses it at the end */
#define DATA_BARE_NEWLINE	0x01	/* CR or LF outside CR LF */
#define DATA_LINE_TOO_LONG	0x02
#define DATA_NUL		0x04
#define DATA_TOO_BIG		0x08

struct data_filter {
	int		 normalize;	/* rewrite bare CR/LF as CR LF */
	uint64_t	 max_size;	/* of the unstuffed message */
	uint64_t	 size;		/* octets of message so far */
	unsigned int	 flags;		/* DATA_* seen so far */
	size_t		 line_len;	/* octets of the current line */
	int		 bol;		/* at the start of a line */
	int		 bol_crlf;	/* ...and that line began after CR LF */
	int		 cr;		/* the last octet was a CR */
	int		 dot;		/* the line so far is a lone "." */
	int		 done;
};

#define DATA_OUT_MAX(n)		(3 * (n) + 2)

void	data_filter_init(struct data_filter *, int normalize,
	    uint64_t max_size);
/*
 * Feed input; message octets are written to out, which must hold
 * DATA_OUT_MAX(inlen) octets.  Returns how much input was consumed: less than inlen
 * only when the end of data (CR LF . CR LF) was reached, in which case
 * df->done is set and the rest belongs to the next command.
 */
size_t	data_filter_feed(struct data_filter *, const uint8_t *in,
	    size_t inlen, uint8_t *out, size_t *outlen);

#endif /* PORTCULLIS_SMTP_DATA_H */
