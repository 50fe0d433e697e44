/*
 * test_dispatch.c -- imsgev's dispatch tables: a handler sees only
 * what its table lets through; anything else (unknown type, wrong
 * length, a descriptor missing or unwanted, a repeated once-only
 * message, a payload the handler refuses) closes the channel, once,
 * without the handler running.  And every message type in
 * common/proto.h has a name for the logs.
 */

#include <sys/socket.h>

#include <ctype.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "imsgev.h"
#include "proto.h"

#define T_FIXED		1001	/* 8 octets exactly */
#define T_VAR		1002	/* at least 4 octets */
#define T_FD		1003	/* empty + a descriptor */
#define T_FD_MAYBE	1004	/* empty, a descriptor or not */
#define T_ONCE		1005	/* empty, once */
#define T_BAD		1006	/* empty; the handler refuses it */
#define T_SWITCH	1007	/* empty; switches to the second table */
#define T_SECOND	1008	/* empty; only in the second table */
#define T_UNKNOWN	1999

static struct event_base	*base;
static struct imsgev		 iev;
static struct imsgbuf		 peer;
static int			 sp[2];
static int			 calls[16];
static int			 closed, refused, fd_seen;

static int
handle(struct imsgev *ev, struct imsg *imsg)
{
	int	 fd;

	(void)ev;
	calls[imsg_get_type(imsg) - 1000]++;
	if ((fd = imsg_get_fd(imsg)) != -1) {
		fd_seen++;
		close(fd);
	}
	return 0;
}

static int
handle_bad(struct imsgev *ev, struct imsg *imsg)
{
	calls[imsg_get_type(imsg) - 1000]++;
	return imsgev_reject(ev, "no good %d", 42);
}

static const struct imsg_dispatch second[];

static int
handle_switch(struct imsgev *ev, struct imsg *imsg)
{
	calls[imsg_get_type(imsg) - 1000]++;
	imsgev_set_table(ev, second);
	return 0;
}

static const struct imsg_dispatch first[] = {
	{ T_FIXED, 8, 0, handle },
	{ T_VAR, 4, IMSGEV_MIN, handle },
	{ T_FD, 0, IMSGEV_FD, handle },
	{ T_FD_MAYBE, 0, IMSGEV_FD_MAYBE, handle },
	{ T_ONCE, 0, IMSGEV_ONCE, handle },
	{ T_BAD, 0, 0, handle_bad },
	{ T_SWITCH, 0, 0, handle_switch },
	{ 0, 0, 0, NULL }
};

static const struct imsg_dispatch second[] = {
	{ T_SECOND, 0, 0, handle },
	{ T_ONCE, 0, IMSGEV_ONCE, handle },
	{ 0, 0, 0, NULL }
};

static void
on_closed(struct imsgev *ev)
{
	(void)ev;
	closed++;
}

static void
on_refused(struct imsgev *ev)
{
	(void)ev;
	refused++;
}

static void
setup(void)
{
	memset(calls, 0, sizeof(calls));
	closed = refused = fd_seen = 0;
	cr_assert_not_null(base = event_base_new());
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	cr_assert_eq(imsgev_init(&iev, base, sp[0], 1, "test peer", NULL,
	    on_closed, NULL), 0);
	imsgev_set_table(&iev, first);
	iev.refused = on_refused;
	cr_assert_eq(imsgbuf_init(&peer, sp[1]), 0);
	imsgbuf_allow_fdpass(&peer);
}

static void
teardown(void)
{
	imsgbuf_clear(&peer);
	close(sp[1]);
	if (iev.open) {
		iev.closed = NULL;
		imsgev_close(&iev);
	}
	event_base_free(base);
}

TestSuite(dispatch, .init = setup, .fini = teardown, .timeout = 10);

static void
put(uint32_t type, int fd, const void *data, size_t len)
{
	cr_assert_neq(imsg_compose(&peer, type, 0, 0, fd, data, len), -1);
}

/*
 * Deliver what was sent, the way the daemons' loops do: a read stops
 * where a descriptor rides, so it takes a few turns.
 */
static void
deliver(void)
{
	cr_assert_eq(imsgbuf_flush(&peer), 0);
	cr_assert_eq(event_base_loop(base, EVLOOP_ONCE), 0);
	for (int i = 0; i < 8 && iev.open; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

static void
assert_refused(void)
{
	cr_assert_eq(closed, 1);
	cr_assert_eq(refused, 1);
	cr_assert(!iev.open);
}

static int
devnull(void)
{
	int	 fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	cr_assert_neq(fd, -1);
	return fd;
}

Test(dispatch, valid_messages_reach_their_handler)
{
	char	 buf[64];

	memset(buf, 'x', sizeof(buf));
	put(T_FIXED, -1, buf, 8);
	put(T_VAR, -1, buf, 4);
	put(T_VAR, -1, buf, 64);
	put(T_FD, devnull(), NULL, 0);
	put(T_FD_MAYBE, devnull(), NULL, 0);
	put(T_FD_MAYBE, -1, NULL, 0);
	put(T_ONCE, -1, NULL, 0);
	deliver();
	cr_assert_eq(calls[T_FIXED - 1000], 1);
	cr_assert_eq(calls[T_VAR - 1000], 2);
	cr_assert_eq(calls[T_FD - 1000], 1);
	cr_assert_eq(calls[T_FD_MAYBE - 1000], 2);
	cr_assert_eq(calls[T_ONCE - 1000], 1);
	cr_assert_eq(fd_seen, 2);
	cr_assert_eq(closed, 0);
	cr_assert_eq(refused, 0);
	cr_assert(iev.open);
}

Test(dispatch, short_payload_is_refused)
{
	put(T_FIXED, -1, "1234567", 7);
	put(T_FIXED, -1, "12345678", 8);	/* never read */
	deliver();
	assert_refused();
	cr_assert_eq(calls[T_FIXED - 1000], 0);
}

Test(dispatch, long_payload_is_refused)
{
	put(T_FIXED, -1, "123456789", 9);
	deliver();
	assert_refused();
	cr_assert_eq(calls[T_FIXED - 1000], 0);
}

Test(dispatch, below_the_minimum_is_refused)
{
	put(T_VAR, -1, "123", 3);
	deliver();
	assert_refused();
	cr_assert_eq(calls[T_VAR - 1000], 0);
}

Test(dispatch, missing_descriptor_is_refused)
{
	put(T_FD, -1, NULL, 0);
	deliver();
	assert_refused();
	cr_assert_eq(calls[T_FD - 1000], 0);
}

Test(dispatch, unwanted_descriptor_is_refused_and_closed)
{
	int	 fd = devnull(), copy;
	char	 path[64], target[64];

	/* The copy that travels; ours tells whether authd's was closed. */
	copy = dup(fd);
	put(T_FIXED, copy, "12345678", 8);
	deliver();
	assert_refused();
	cr_assert_eq(calls[T_FIXED - 1000], 0);
	cr_assert_eq(fd_seen, 0);
	/* The descriptor received is the lowest free one: closed again. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd + 1);
	cr_assert_eq(readlink(path, target, sizeof(target)), -1);
	close(fd);
}

Test(dispatch, repeated_once_message_is_refused)
{
	put(T_ONCE, -1, NULL, 0);
	put(T_ONCE, -1, NULL, 0);
	deliver();
	assert_refused();
	cr_assert_eq(calls[T_ONCE - 1000], 1);
}

Test(dispatch, unknown_type_is_refused)
{
	put(T_UNKNOWN, -1, NULL, 0);
	put(T_FIXED, -1, "12345678", 8);	/* never read */
	deliver();
	assert_refused();
	cr_assert_eq(calls[T_FIXED - 1000], 0);
}

Test(dispatch, handler_refusal_closes_the_channel)
{
	put(T_BAD, -1, NULL, 0);
	put(T_FIXED, -1, "12345678", 8);	/* never read */
	deliver();
	assert_refused();
	cr_assert_eq(calls[T_BAD - 1000], 1);
	cr_assert_eq(calls[T_FIXED - 1000], 0);
	cr_assert_str_eq(iev.why, "no good 42");
}

Test(dispatch, switched_table_holds_from_the_next_message)
{
	put(T_ONCE, -1, NULL, 0);
	put(T_SWITCH, -1, NULL, 0);
	put(T_SECOND, -1, NULL, 0);
	put(T_ONCE, -1, NULL, 0);	/* once again: a new table */
	deliver();
	cr_assert_eq(closed, 0);
	cr_assert_eq(calls[T_SECOND - 1000], 1);
	cr_assert_eq(calls[T_ONCE - 1000], 2);
	/* The first table's messages are now unexpected. */
	put(T_FIXED, -1, "12345678", 8);
	deliver();
	assert_refused();
	cr_assert_eq(calls[T_FIXED - 1000], 0);
}

/* Every IMSG_* in proto.h's enum, by its number, has its own name. */
Test(proto, every_type_has_a_name)
{
	const char	*dir = getenv("PORTCULLIS_TESTDIR");
	char		 path[512], line[512], want[128];
	regmatch_t	 m[3];
	regex_t		 rx;
	FILE		*f;
	int		 n = 0;

	snprintf(path, sizeof(path), "%s/../../common/proto.h",
	    dir != NULL ? dir : "tests/unit");
	cr_assert_not_null(f = fopen(path, "r"), "%s", path);
	cr_assert_eq(regcomp(&rx, "^[[:space:]]*IMSG_([A-Z_]+) = ([0-9]+),",
	    REG_EXTENDED), 0);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (regexec(&rx, line, 3, m, 0) != 0)
			continue;
		snprintf(want, sizeof(want), "%.*s",
		    (int)(m[1].rm_eo - m[1].rm_so), line + m[1].rm_so);
		cr_expect_str_eq(imsg_type_name((uint32_t)strtoul(
		    line + m[2].rm_so, NULL, 10)), want);
		n++;
	}
	regfree(&rx);
	fclose(f);
	cr_assert_gt(n, 25, "only %d types found in %s", n, path);
	cr_assert_str_eq(imsg_type_name(9999), "UNKNOWN(9999)");
}
