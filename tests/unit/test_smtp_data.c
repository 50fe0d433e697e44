/*
 * test_smtp_data.c -- the DATA filter: the message ends only at
 * CR LF . CR LF, dots are unstuffed, and smuggling sequences never end
 * a message early, whichever way the input is split.
 */

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "smtp_data.h"

struct result {
	char		 out[8192];
	size_t		 outlen;
	size_t		 consumed;
	unsigned int	 flags;
	int		 done;
};

/* Feed in pieces of `step` octets (0: all at once). */
static struct result
run(const char *in, size_t inlen, int normalize, uint64_t max, size_t step)
{
	struct data_filter	 df;
	struct result		 r;
	uint8_t			 buf[DATA_OUT_MAX(8192)];
	size_t			 off = 0, n, outlen, used;

	memset(&r, 0, sizeof(r));
	data_filter_init(&df, normalize, max);
	while (off < inlen && !df.done) {
		n = step == 0 || inlen - off < step ? inlen - off : step;
		used = data_filter_feed(&df, (const uint8_t *)in + off, n, buf,
		    &outlen);
		cr_assert_leq(r.outlen + outlen, sizeof(r.out));
		memcpy(r.out + r.outlen, buf, outlen);
		r.outlen += outlen;
		off += used;
		if (!df.done)
			cr_assert_eq(used, n, "all input used before the end");
	}
	r.consumed = off;
	r.flags = df.flags;
	r.done = df.done;
	return r;
}

static void
check_all_splits(const char *in, int normalize, const char *want,
    unsigned int flags, int done)
{
	size_t	 len = strlen(in);

	for (size_t step = 0; step <= len; step++) {
		struct result r = run(in, len, normalize, 1 << 20, step);

		cr_assert_eq(r.done, done, "step %zu: done", step);
		cr_assert_eq(r.flags, flags, "step %zu: flags %#x", step,
		    r.flags);
		if (want != NULL) {
			cr_assert_eq(r.outlen, strlen(want), "step %zu: %.*s",
			    step, (int)r.outlen, r.out);
			cr_assert_eq(memcmp(r.out, want, r.outlen), 0,
			    "step %zu", step);
		}
	}
}

Test(smtp_data, simple_message_ends_at_dot)
{
	const char	*in = "Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n";
	struct result	 r = run(in, strlen(in), 0, 1 << 20, 0);

	cr_assert(r.done);
	cr_assert_eq(r.consumed, strlen("Subject: x\r\n\r\nhello\r\n.\r\n"));
	check_all_splits("Subject: x\r\n\r\nhello\r\n.\r\n", 0,
	    "Subject: x\r\n\r\nhello\r\n", 0, 1);
}

Test(smtp_data, empty_message)
{
	check_all_splits(".\r\n", 0, "", 0, 1);
}

Test(smtp_data, dot_unstuffing)
{
	check_all_splits("..leading\r\n...\r\n.x\r\n.\r\n", 0,
	    ".leading\r\n..\r\nx\r\n", 0, 1);
}

Test(smtp_data, smuggling_lf_dot_lf_does_not_end)
{
	check_all_splits("a\n.\nMAIL FROM:<x@y>\r\n", 0, NULL,
	    DATA_BARE_NEWLINE, 0);
}

Test(smtp_data, smuggling_cr_dot_cr_does_not_end)
{
	check_all_splits("a\r.\rMAIL FROM:<x@y>\r\n", 0, NULL,
	    DATA_BARE_NEWLINE, 0);
}

Test(smtp_data, smuggling_lf_dot_crlf_does_not_end)
{
	check_all_splits("a\n.\r\nMAIL FROM:<x@y>\r\n", 0, NULL,
	    DATA_BARE_NEWLINE, 0);
}

Test(smtp_data, smuggling_crlf_dot_lf_does_not_end)
{
	check_all_splits("a\r\n.\nMAIL FROM:<x@y>\r\n", 0, NULL,
	    DATA_BARE_NEWLINE, 0);
}

Test(smtp_data, normalize_never_ends_on_bare_newlines)
{
	/* Rewritten to CR LF in the content, but not the end of data. */
	check_all_splits("a\n.\nb\r\n.\r\n", 1, "a\r\n.\r\nb\r\n", 0, 1);
	check_all_splits("a\n.\r\nb\r\n.\r\n", 1, "a\r\n.\r\nb\r\n", 0, 1);
	check_all_splits("a\rb\r\n.\r\n", 1, "a\r\nb\r\n", 0, 1);
}

Test(smtp_data, nul_is_flagged)
{
	struct result	 r = run("a\0b\r\n.\r\n", 8, 0, 1 << 20, 0);

	cr_assert(r.done);
	cr_assert_eq(r.flags, DATA_NUL);
}

Test(smtp_data, long_line_is_flagged)
{
	char	 in[1100 + 5];

	memset(in, 'x', 999);
	memcpy(in + 999, "\r\n.\r\n", 5);
	cr_assert_eq(run(in, 999 + 5, 0, 1 << 20, 0).flags,
	    DATA_LINE_TOO_LONG);
	/* 998 octets plus CR LF is the longest line allowed. */
	memcpy(in + 998, "\r\n.\r\n", 5);
	cr_assert_eq(run(in, 998 + 5, 0, 1 << 20, 0).flags, 0);
}

Test(smtp_data, size_limit_stops_output)
{
	const char	*in = "0123456789\r\n0123456789\r\n.\r\n";
	struct result	 r = run(in, strlen(in), 0, 10, 3);

	cr_assert(r.done, "the end is still found");
	cr_assert_eq(r.flags, DATA_TOO_BIG);
	cr_assert_eq(r.outlen, 10, "nothing past the limit is produced");
}

Test(smtp_data, pipelined_command_after_end_is_left)
{
	const char	*in = "x\r\n.\r\nQUIT\r\n";
	struct result	 r = run(in, strlen(in), 0, 1 << 20, 0);

	cr_assert(r.done);
	cr_assert_str_eq(in + r.consumed, "QUIT\r\n");
}
