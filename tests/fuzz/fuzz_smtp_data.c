/*
 * fuzz_smtp_data.c -- the DATA filter (worker/smtp_data.c).
 *
 * Input: one octet of options (bit 0: normalize bare newlines; bit 1:
 * a small size limit), one octet that seeds how the rest is cut into
 * chunks, then the octets a client sends after 354.  The stream goes
 * through the filter in those chunks and again in one piece, and
 * the properties that close SMTP smuggling are checked:
 *   - the chunking changes nothing: same output, same flags, the end
 *     of data at the same octet;
 *   - the end of data is only ever a "." line between two real CR LF
 *     (or right after the 354, where the client's CR LF was);
 *   - a message the filter accepts (no flag) has no CR or LF outside
 *     CR LF pairs, no line over 1000 octets, and stays in the limit;
 *   - the output never exceeds DATA_OUT_MAX of its chunk (ASan sees
 *     every chunk's buffer at its exact size).
 */

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "smtp_data.h"

struct result {
	uint8_t		*out;
	size_t		 outlen;
	size_t		 used;
	unsigned int	 flags;
	int		 done;
	uint64_t	 size;
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	return 0;
}

/* Feed in in chunks from a small LCG; chunk 0 means "all at once". */
static void
feed(const uint8_t *in, size_t len, int normalize, uint64_t max,
    unsigned int seed, int whole, struct result *r)
{
	struct data_filter	 df;
	uint8_t			*chunk_out;
	size_t			 pos = 0, n, outlen, used;

	data_filter_init(&df, normalize, max);
	if ((r->out = malloc(DATA_OUT_MAX(len) + 1)) == NULL)
		abort();
	r->outlen = 0;
	while (pos < len && !df.done) {
		if (whole)
			n = len - pos;
		else {
			seed = seed * 1103515245 + 12345;
			n = 1 + (seed >> 16) % ((seed & 0x100) ? 3 : 97);
			if (n > len - pos)
				n = len - pos;
		}
		/* Exactly what the contract promises, no more. */
		if ((chunk_out = malloc(DATA_OUT_MAX(n))) == NULL)
			abort();
		used = data_filter_feed(&df, in + pos, n, chunk_out, &outlen);
		FUZZ_ASSERT(used <= n);
		FUZZ_ASSERT(outlen <= DATA_OUT_MAX(n));
		FUZZ_ASSERT(used == n || df.done);
		memcpy(r->out + r->outlen, chunk_out, outlen);
		r->outlen += outlen;
		free(chunk_out);
		pos += used;
	}
	r->used = pos;
	r->flags = df.flags;
	r->done = df.done;
	r->size = df.size;
}

/* The end of data is CR LF . CR LF, the first CR LF maybe the 354's. */
static void
check_end(const uint8_t *in, size_t used)
{
	FUZZ_ASSERT(used >= 3);
	FUZZ_ASSERT(memcmp(in + used - 3, ".\r\n", 3) == 0);
	FUZZ_ASSERT(used == 3 || (used >= 5 &&
	    memcmp(in + used - 5, "\r\n", 2) == 0));
}

static void
check_accepted(const struct result *r, uint64_t max)
{
	size_t	 line = 0;

	FUZZ_ASSERT(r->size <= max);
	FUZZ_ASSERT(r->outlen == r->size);
	for (size_t i = 0; i < r->outlen; i++) {
		if (r->out[i] == '\r') {
			FUZZ_ASSERT(i + 1 < r->outlen && r->out[i + 1] == '\n');
			line = 0;
			i++;
			continue;
		}
		FUZZ_ASSERT(r->out[i] != '\n');
		FUZZ_ASSERT(r->out[i] != '\0');
		FUZZ_ASSERT(++line <= SMTP_TEXT_LINE_MAX - 2);
	}
	/* A finished message ends with its last line's CR LF, or is empty. */
	if (r->done && r->outlen > 0)
		FUZZ_ASSERT(r->outlen >= 2 &&
		    memcmp(r->out + r->outlen - 2, "\r\n", 2) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct result	 a, b;
	uint64_t	 max;
	int		 normalize;

	if (size < 2)
		return 0;
	normalize = data[0] & 0x01;
	max = (data[0] & 0x02) ? 64 : 1024 * 1024;
	feed(data + 2, size - 2, normalize, max, data[1], 1, &a);
	feed(data + 2, size - 2, normalize, max, data[1], 0, &b);

	FUZZ_ASSERT(a.used == b.used);
	FUZZ_ASSERT(a.done == b.done);
	FUZZ_ASSERT(a.flags == b.flags);
	FUZZ_ASSERT(a.size == b.size);
	FUZZ_ASSERT(a.outlen == b.outlen);
	FUZZ_ASSERT(memcmp(a.out, b.out, a.outlen) == 0);
	FUZZ_ASSERT(a.size <= max);
	if (normalize)
		FUZZ_ASSERT(!(a.flags & DATA_BARE_NEWLINE));
	if (a.done)
		check_end(data + 2, a.used);
	if (a.flags == 0)
		check_accepted(&a, max);
	free(a.out);
	free(b.out);
	return 0;
}
