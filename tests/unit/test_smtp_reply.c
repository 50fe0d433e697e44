/*
 * test_smtp_reply.c -- the parser of the next hop's replies
 * (worker/smtp_reply.c): multiline replies (RFC 5321 4.2.1), the
 * enhanced status (RFC 3463), the text kept, and what is not SMTP.
 */

#include <string.h>

#include <criterion/criterion.h>

#include "smtp_reply.h"

/* Feed the lines of s, each ended by \n; the last result. */
static int
feed(struct smtp_reply *rp, const char *s)
{
	char		 line[8192];
	const char	*nl;
	size_t		 len;
	int		 rv = SMTP_REPLY_MORE;

	while ((nl = strchr(s, '\n')) != NULL) {
		len = nl - s;
		cr_assert_lt(len, sizeof(line));
		memcpy(line, s, len);
		line[len] = '\0';
		rv = smtp_reply_feed(rp, line, len, NULL);
		if (rv == SMTP_REPLY_ERROR)
			return rv;
		s = nl + 1;
	}
	return rv;
}

Test(smtp_reply, one_line)
{
	struct smtp_reply	 rp = { 0 };

	cr_assert_eq(feed(&rp, "250 2.1.0 Ok\n"), SMTP_REPLY_DONE);
	cr_assert_eq(rp.code, 250);
	cr_assert_str_eq(rp.status, "2.1.0");
	cr_assert_str_eq(rp.text, "Ok");
	cr_assert_eq(rp.textlen, 2);
	cr_assert_eq(rp.lines, 0);
}

Test(smtp_reply, multiline_and_next_reply)
{
	struct smtp_reply	 rp = { 0 };
	const char		*text;

	cr_assert_eq(smtp_reply_feed(&rp, "550-5.1.1 <x@y>: no", 19, &text),
	    SMTP_REPLY_MORE);
	cr_assert_str_eq(text, "<x@y>: no");
	cr_assert_eq(rp.lines, 1);
	cr_assert_eq(feed(&rp, "550-5.1.1 such\n550 5.1.1 user\n"),
	    SMTP_REPLY_DONE);
	cr_assert_eq(rp.code, 550);
	cr_assert_str_eq(rp.status, "5.1.1");
	cr_assert_str_eq(rp.text, "<x@y>: no such user");
	/* The next line starts afresh. */
	cr_assert_eq(feed(&rp, "221 Bye\n"), SMTP_REPLY_DONE);
	cr_assert_eq(rp.code, 221);
	cr_assert_str_eq(rp.status, "");
	cr_assert_str_eq(rp.text, "Bye");
}

Test(smtp_reply, ehlo_keywords_text)
{
	struct smtp_reply	 rp = { 0 };
	const char		*text;

	cr_assert_eq(smtp_reply_feed(&rp, "250-hop.test Hello", 18, &text),
	    SMTP_REPLY_MORE);
	cr_assert_eq(smtp_reply_feed(&rp, "250-STARTTLS", 12, &text),
	    SMTP_REPLY_MORE);
	cr_assert_str_eq(text, "STARTTLS");
	cr_assert_eq(smtp_reply_feed(&rp, "250 8BITMIME", 12, &text),
	    SMTP_REPLY_DONE);
	cr_assert_str_eq(text, "8BITMIME");
	cr_assert_str_eq(rp.text, "hop.test Hello STARTTLS 8BITMIME");
}

Test(smtp_reply, bare_code)
{
	struct smtp_reply	 rp = { 0 };

	cr_assert_eq(feed(&rp, "354\n"), SMTP_REPLY_DONE);
	cr_assert_eq(rp.code, 354);
	cr_assert_str_eq(rp.text, "");
	cr_assert_eq(feed(&rp, "250 \n"), SMTP_REPLY_DONE);
	cr_assert_eq(rp.code, 250);
}

/* The status counts only with the reply's class, and only on line 1. */
Test(smtp_reply, status)
{
	struct smtp_reply	 rp = { 0 };

	cr_assert_eq(feed(&rp, "451 5.0.0 odd\n"), SMTP_REPLY_DONE);
	cr_assert_str_eq(rp.status, "");
	cr_assert_str_eq(rp.text, "5.0.0 odd");
	cr_assert_eq(feed(&rp, "451 4.1234.0 odd\n"), SMTP_REPLY_DONE);
	cr_assert_str_eq(rp.status, "");
	cr_assert_eq(feed(&rp, "451-first\n451 4.3.0 second\n"),
	    SMTP_REPLY_DONE);
	cr_assert_str_eq(rp.status, "");
	cr_assert_str_eq(rp.text, "first second");
	cr_assert_eq(smtp_reply_status_len("2.0.0", 2), 5);
	cr_assert_eq(smtp_reply_status_len("2.0.0x", 2), 0);
	cr_assert_eq(smtp_reply_status_len("2.0", 2), 0);
}

Test(smtp_reply, not_smtp)
{
	const char	*bad[] = { "25\n", "hello\n", "199 low\n", "600 high\n",
	    "250x\n", "2a0 x\n", "250-a\n251 b\n" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct smtp_reply rp = { 0 };

		cr_assert_eq(feed(&rp, bad[i]), SMTP_REPLY_ERROR, "%s", bad[i]);
	}
}

Test(smtp_reply, nul_octet)
{
	struct smtp_reply	 rp = { 0 };

	cr_assert_eq(smtp_reply_feed(&rp, "250 a\0b", 7, NULL),
	    SMTP_REPLY_ERROR);
}

Test(smtp_reply, too_many_lines)
{
	struct smtp_reply	 rp = { 0 };
	int			 i;

	for (i = 0; i < SMTP_REPLY_LINES_MAX; i++)
		cr_assert_eq(smtp_reply_feed(&rp, "250-x", 5, NULL),
		    SMTP_REPLY_MORE);
	cr_assert_eq(smtp_reply_feed(&rp, "250 x", 5, NULL),
	    SMTP_REPLY_ERROR);
}

Test(smtp_reply, text_is_cut)
{
	struct smtp_reply	 rp = { 0 };
	char			 line[400];

	memset(line, 'a', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	memcpy(line, "250-", 4);
	cr_assert_eq(smtp_reply_feed(&rp, line, strlen(line), NULL),
	    SMTP_REPLY_MORE);
	cr_assert_eq(smtp_reply_feed(&rp, line, strlen(line), NULL),
	    SMTP_REPLY_MORE);
	line[3] = ' ';
	cr_assert_eq(smtp_reply_feed(&rp, line, strlen(line), NULL),
	    SMTP_REPLY_DONE);
	cr_assert_eq(rp.textlen, SMTP_REPLY_TEXT_MAX - 1);
	cr_assert_eq(strlen(rp.text), rp.textlen);
}

Test(smtp_reply, pending_limit)
{
	cr_assert_eq(smtp_reply_pending(0), SMTP_REPLY_MORE);
	cr_assert_eq(smtp_reply_pending(SMTP_REPLY_LINE_MAX), SMTP_REPLY_MORE);
	cr_assert_eq(smtp_reply_pending(SMTP_REPLY_LINE_MAX + 1),
	    SMTP_REPLY_ERROR);
}
