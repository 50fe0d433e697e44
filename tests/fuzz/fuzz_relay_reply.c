/*
 * fuzz_relay_reply.c -- the parser of the next hop's replies
 * (worker/smtp_reply.c), fed the way the relay feeds it: lines taken
 * from a libevent buffer with EVBUFFER_EOL_CRLF, as they arrive.
 *
 * Input: one octet that seeds how the rest is cut into chunks, then
 * what a next hop sends.  It is read once in those chunks and once in
 * one piece, and the properties are:
 *   - every complete reply has a code from 200 to 599, an enhanced
 *     status that is empty or of the reply's class, a text of
 *     textlen octets without NUL and within SMTP_REPLY_TEXT_MAX, and
 *     no reply is longer than SMTP_REPLY_LINES_MAX lines;
 *   - the chunking changes nothing but where a line still without
 *     its end grows past SMTP_REPLY_LINE_MAX: the replies read in one
 *     way are the first replies read in the other.
 */

#include <string.h>

#include <event2/buffer.h>

#include "fuzz.h"
#include "smtp_reply.h"

#define REPLIES_MAX	64

struct run {
	struct smtp_reply	 replies[REPLIES_MAX];
	size_t			 n;
	int			 error;
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	return 0;
}

static void
check_reply(const struct smtp_reply *rp)
{
	size_t	 n;

	FUZZ_ASSERT(rp->code >= 200 && rp->code <= 599);
	FUZZ_ASSERT(rp->lines == 0);
	FUZZ_ASSERT(rp->textlen < sizeof(rp->text));
	FUZZ_ASSERT(strlen(rp->text) == rp->textlen);
	n = strlen(rp->status);
	FUZZ_ASSERT(n < sizeof(rp->status));
	FUZZ_ASSERT(n == 0 || smtp_reply_status_len(rp->status,
	    rp->code / 100) == n);
}

/* What relay_read_reply() does with what is in the buffer. */
static void
drain(struct evbuffer *in, struct smtp_reply *rp, struct run *run)
{
	char	*line;
	size_t	 len;
	int	 rv;

	while (!run->error && run->n < REPLIES_MAX) {
		if ((line = evbuffer_readln(in, &len,
		    EVBUFFER_EOL_CRLF)) == NULL) {
			if (smtp_reply_pending(evbuffer_get_length(in)) ==
			    SMTP_REPLY_ERROR)
				run->error = 1;
			return;
		}
		rv = smtp_reply_feed(rp, line, len, NULL);
		free(line);
		if (rv == SMTP_REPLY_ERROR)
			run->error = 1;
		else if (rv == SMTP_REPLY_MORE)
			FUZZ_ASSERT(rp->lines > 0 &&
			    rp->lines <= SMTP_REPLY_LINES_MAX);
		else {
			check_reply(rp);
			run->replies[run->n++] = *rp;
		}
	}
}

static void
read_replies(const uint8_t *data, size_t size, uint8_t seed, struct run *run)
{
	struct evbuffer		*in;
	struct smtp_reply	 rp;
	size_t			 off = 0, n;

	memset(run, 0, sizeof(*run));
	memset(&rp, 0, sizeof(rp));
	if ((in = evbuffer_new()) == NULL)
		abort();
	while (off < size && !run->error && run->n < REPLIES_MAX) {
		n = seed == 0 ? size - off : 1 + (seed * (off + 7)) % 613;
		if (n > size - off)
			n = size - off;
		FUZZ_ASSERT(evbuffer_add(in, data + off, n) == 0);
		off += n;
		drain(in, &rp, run);
	}
	evbuffer_free(in);
}

static int
same_reply(const struct smtp_reply *a, const struct smtp_reply *b)
{
	return a->code == b->code && strcmp(a->status, b->status) == 0 &&
	    a->textlen == b->textlen && strcmp(a->text, b->text) == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct run	 whole, chunked;
	size_t			 n;

	if (size < 1)
		return 0;
	read_replies(data + 1, size - 1, 0, &whole);
	read_replies(data + 1, size - 1, data[0] | 1, &chunked);
	n = whole.n < chunked.n ? whole.n : chunked.n;
	for (size_t i = 0; i < n; i++)
		FUZZ_ASSERT(same_reply(&whole.replies[i], &chunked.replies[i]));
	/* Without an error, both saw every reply. */
	if (!whole.error && !chunked.error)
		FUZZ_ASSERT(whole.n == chunked.n);
	return 0;
}
