/*
 * test_metrics.c -- common/metrics.c: the table, counting in a
 * process, the check of what a peer sent, and the text that
 * portcullis-metrics renders (Prometheus 0.0.4 and OpenMetrics).
 * promtool checks real scrapes in tests/integration/test_metrics.py.
 */

#include <sys/socket.h>

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imsgev.h"
#include "metrics.h"

/* Each series of id as the metrics process would receive it. */
struct coll {
	struct metrics_in	 in[64];
	size_t			 n;
	uint32_t		 role, id;
};

static void
take(const char label[METRIC_LABELS_MAX][METRIC_LABEL_MAX],
    const uint64_t *v, void *arg)
{
	struct coll		*c = arg;
	struct metrics_in	*m = &c->in[c->n++];

	memset(m, 0, sizeof(*m));
	m->role = c->role;
	m->s.metric = c->id;
	memcpy(m->s.label, label, sizeof(m->s.label));
	memcpy(m->s.v, v, sizeof(m->s.v));
}

static char *
render(struct metrics_in *in, size_t n, int om)
{
	char	*text = NULL;
	size_t	 len = 0;
	FILE	*f = open_memstream(&text, &len);

	cr_assert_not_null(f);
	cr_assert_eq(metrics_render(f, in, n, om), 0);
	fclose(f);
	return text;
}

Test(metrics, table_is_whole_and_named_by_convention)
{
	for (int i = 0; i < M__COUNT; i++) {
		const struct metric_def	*d = &metric_defs[i];

		cr_assert_not_null(d->name, "metric %d has no row", i);
		cr_assert(strncmp(d->name, "portcullis_", 11) == 0, "%s",
		    d->name);
		cr_assert_not_null(d->help);
		/* counters get _total when rendered, never in the table */
		cr_assert_null(strstr(d->name, "_total"), "%s", d->name);
		if (d->type == METRIC_HISTOGRAM)
			cr_assert(strstr(d->name, "_seconds") != NULL);
		for (int l = 0; l < METRIC_LABELS_MAX && d->labels[l]; l++) {
			cr_assert_str_neq(d->labels[l], "user");
			cr_assert_str_neq(d->labels[l], "client");
			cr_assert_str_neq(d->labels[l], "le");
			cr_assert_str_neq(d->labels[l], "worker");
		}
	}
}

Test(metrics, counters_gauges_histograms)
{
	struct coll	 c = { .role = METRICS_PEER_AUTHD };
	char		*t;

	metrics_add(M_AUTH_ATTEMPTS, 1, "PLAIN", "local", "ok");
	metrics_add(M_AUTH_ATTEMPTS, 2, "PLAIN", "local", "ok");
	metrics_add(M_AUTH_ATTEMPTS, 1, "LOGIN", "none", "fail");
	cr_assert_eq(metrics_get(M_AUTH_ATTEMPTS, "PLAIN", "local", "ok"), 3);
	metrics_observe(M_AUTH_SECONDS, 500, "local");		/* 0.5 ms */
	metrics_observe(M_AUTH_SECONDS, 30000, "local");	/* 30 ms */
	metrics_observe(M_AUTH_SECONDS, 9000000, "local");	/* 9 s */
	metrics_set(M_CHECKER_UP, 1, "local");
	metrics_set(M_CHECKER_UP, 0, "local");

	c.id = M_AUTH_ATTEMPTS;
	metrics_foreach(M_AUTH_ATTEMPTS, take, &c);
	c.id = M_AUTH_SECONDS;
	metrics_foreach(M_AUTH_SECONDS, take, &c);
	c.id = M_CHECKER_UP;
	metrics_foreach(M_CHECKER_UP, take, &c);
	cr_assert_eq(c.n, 4);
	t = render(c.in, c.n, 0);
	cr_assert(strstr(t,
	    "# TYPE portcullis_auth_attempts_total counter\n"));
	cr_assert(strstr(t, "portcullis_auth_attempts_total{"
	    "mechanism=\"PLAIN\",checker=\"local\",result=\"ok\"} 3\n"));
	cr_assert(strstr(t, "portcullis_auth_duration_seconds_bucket{"
	    "checker=\"local\",le=\"0.001\"} 1\n"));
	cr_assert(strstr(t, "portcullis_auth_duration_seconds_bucket{"
	    "checker=\"local\",le=\"0.05\"} 2\n"));
	cr_assert(strstr(t, "portcullis_auth_duration_seconds_bucket{"
	    "checker=\"local\",le=\"5\"} 2\n"));
	cr_assert(strstr(t, "portcullis_auth_duration_seconds_bucket{"
	    "checker=\"local\",le=\"+Inf\"} 3\n"));
	cr_assert(strstr(t, "portcullis_auth_duration_seconds_count{"
	    "checker=\"local\"} 3\n"));
	cr_assert(strstr(t, "portcullis_auth_duration_seconds_sum{"
	    "checker=\"local\"} 9.030500\n"));
	cr_assert(strstr(t, "portcullis_checker_up{checker=\"local\"} 0\n"));
	cr_assert_null(strstr(t, "# EOF"));
	free(t);

	t = render(c.in, c.n, 1);
	cr_assert(strstr(t, "# TYPE portcullis_auth_attempts counter\n"));
	cr_assert(strstr(t, "portcullis_auth_attempts_total{"));
	cr_assert(strstr(t, "# EOF\n"));
	cr_assert_eq(strcmp(t + strlen(t) - 6, "# EOF\n"), 0);
	free(t);
}

/* A retiring worker and its successor of the same slot: one series. */
Test(metrics, same_series_twice_is_merged_and_workers_labelled)
{
	struct metrics_in	 in[3];
	char			*t;

	memset(in, 0, sizeof(in));
	for (int i = 0; i < 3; i++) {
		in[i].role = METRICS_PEER_WORKER;
		in[i].s.metric = M_SESSIONS;
		strlcpy(in[i].s.label[0], "submission", METRIC_LABEL_MAX);
		in[i].s.v[0] = 10 + i;
	}
	in[2].slot = 1;
	t = render(in, 3, 0);
	cr_assert(strstr(t, "portcullis_sessions_total{worker=\"0\","
	    "listener=\"submission\"} 21\n"), "%s", t);
	cr_assert(strstr(t, "portcullis_sessions_total{worker=\"1\","
	    "listener=\"submission\"} 12\n"), "%s", t);
	free(t);
}

Test(metrics, check_refuses_what_a_peer_does_not_count)
{
	struct metrics_sample	 s;

	memset(&s, 0, sizeof(s));
	s.metric = M_AUTH_ATTEMPTS;
	cr_assert_eq(metrics_check(&s, METRICS_PEER_AUTHD), 0);
	/* a worker cannot speak for authd, nor anyone for metrics */
	cr_assert_eq(metrics_check(&s, METRICS_PEER_WORKER), -1);
	s.metric = M_PEER_UP;
	cr_assert_eq(metrics_check(&s, METRICS_PEER_MASTER), -1);
	s.metric = M__COUNT;
	cr_assert_eq(metrics_check(&s, METRICS_PEER_AUTHD), -1);
	/* unterminated labels are cut, labels it does not have cleared */
	s.metric = M_SESSIONS;
	memset(s.label, 'x', sizeof(s.label));
	cr_assert_eq(metrics_check(&s, METRICS_PEER_WORKER), 0);
	cr_assert_eq(strlen(s.label[0]), METRIC_LABEL_MAX - 1);
	cr_assert_eq(s.label[1][0], '\0');
	cr_assert_eq(s.label[2][0], '\0');
}

Test(metrics, label_values_are_escaped)
{
	struct metrics_in	 in;
	char			*t;

	memset(&in, 0, sizeof(in));
	in.role = METRICS_PEER_AUTHD;
	in.s.metric = M_CHECKER_UP;
	strlcpy(in.s.label[0], "a\"b\\c\nd", METRIC_LABEL_MAX);
	in.s.v[0] = 1;
	t = render(&in, 1, 0);
	cr_assert(strstr(t,
	    "portcullis_checker_up{checker=\"a\\\"b\\\\c\\nd\"} 1\n"),
	    "%s", t);
	free(t);
}

/*
 * The answering side of a channel (metrics_channel_open): an ask gets
 * one SAMPLE per series and END with the same seq; anything but an ask
 * closes the channel.
 */
Test(metrics, channel_answers_an_ask_and_refuses_the_rest)
{
	struct event_base	*base = event_base_new();
	struct imsgev		 iev;
	struct imsgbuf		 peer;
	struct imsg		 imsg;
	struct metrics_ask	 ask = { .seq = 42 }, end;
	struct metrics_sample	 smp;
	int			 sp[2], samples = 0, ended = 0;
	ssize_t			 n;

	cr_assert_not_null(base);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp),
	    0);
	memset(&iev, 0, sizeof(iev));
	metrics_add(M_SESSIONS, 1, "submission");
	metrics_channel_open(&iev, base, sp[0], "metrics");
	cr_assert(iev.open);
	cr_assert_eq(imsgbuf_init(&peer, sp[1]), 0);
	cr_assert_neq(imsg_compose(&peer, IMSG_METRICS_ASK, 0, 0, -1, &ask,
	    sizeof(ask)), -1);
	cr_assert_eq(imsgbuf_flush(&peer), 0);
	for (int i = 0; i < 1000 && !ended; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		if ((n = imsgbuf_read(&peer)) == -1)
			break;
		while (imsg_get(&peer, &imsg) > 0) {
			if (imsg_get_type(&imsg) == IMSG_METRICS_SAMPLE) {
				cr_assert_eq(imsg_get_data(&imsg, &smp,
				    sizeof(smp)), 0);
				cr_assert_eq(smp.seq, 42);
				samples++;
			} else {
				cr_assert_eq(imsg_get_type(&imsg),
				    IMSG_METRICS_END);
				cr_assert_eq(imsg_get_data(&imsg, &end,
				    sizeof(end)), 0);
				cr_assert_eq(end.seq, 42);
				ended = 1;
			}
			imsg_free(&imsg);
		}
	}
	cr_assert(ended);
	cr_assert_geq(samples, 1);
	/* A sample sent to a process that counts: refused, closed. */
	memset(&smp, 0, sizeof(smp));
	cr_assert_neq(imsg_compose(&peer, IMSG_METRICS_SAMPLE, 0, 0, -1,
	    &smp, sizeof(smp)), -1);
	cr_assert_eq(imsgbuf_flush(&peer), 0);
	for (int i = 0; i < 1000 && iev.open; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	cr_assert(!iev.open);
	imsgbuf_clear(&peer);
	close(sp[1]);
	event_base_free(base);
}
