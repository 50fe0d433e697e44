/*
 * metrics.c -- every metric portcullis exposes, in one table; the
 * series a process counts; its answer to the metrics process; and the
 * Prometheus text format (0.0.4, or OpenMetrics 1.0) made of the
 * answers.
 *
 * Names follow Prometheus's conventions: a portcullis_ prefix, base
 * units in the name (_seconds, _bytes), counters ending in _total.
 * Label values are bounded sets: configured names (listeners,
 * checkers), words of the code (results, reasons, mechanisms), a
 * worker's slot.  Never a user name or an address: a label value is a
 * new time series in every scraper, and a client must not be able to
 * make them.
 *
 * A process holds at most METRICS_SERIES_MAX series; one more is
 * dropped with one log line, so a bug that makes label values
 * unbounded costs a warning, not memory.
 */

#include <sys/types.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "imsgev.h"
#include "log.h"
#include "metrics.h"

#define METRICS_SERIES_MAX	1024
/* An answer waits in the channel; past this the peer must read first. */
#define METRICS_WQ_MAX		(2 * METRICS_SERIES_MAX + 16)

#define L(...)	{ __VA_ARGS__ }

const struct metric_def metric_defs[M__COUNT] = {
	[M_BUILD_INFO] = { "portcullis_build", METRIC_INFO,
	    METRIC_SRC_MASTER, "The build that runs: version and imsg "
	    "protocol version.", L("version", "protocol") },
	[M_CONFIG_GENERATION] = { "portcullis_config_generation",
	    METRIC_GAUGE, METRIC_SRC_MASTER, "The configuration generation "
	    "in force; each good reload adds one.", L(NULL) },
	[M_CONFIG_RELOADS] = { "portcullis_config_reloads", METRIC_COUNTER,
	    METRIC_SRC_MASTER, "Reloads of the configuration, by result.",
	    L("result") },
	[M_PROCESS_RESTARTS] = { "portcullis_process_restarts",
	    METRIC_COUNTER, METRIC_SRC_MASTER, "Children restarted by "
	    "master, by process and slot.", L("process", "slot") },
	[M_PEER_UP] = { "portcullis_process_up", METRIC_GAUGE,
	    METRIC_SRC_METRICS, "1 if the process answered this scrape in "
	    "time, 0 if its last answer is served.", L("process", "slot") },
	[M_HTTP_REQUESTS] = { "portcullis_metrics_http_requests",
	    METRIC_COUNTER, METRIC_SRC_METRICS, "Requests to the metrics "
	    "endpoint, by status code.", L("code") },
	[M_SESSIONS] = { "portcullis_sessions", METRIC_COUNTER,
	    METRIC_SRC_WORKER, "SMTP sessions opened, by listener.",
	    L("listener") },
	[M_SESSIONS_ACTIVE] = { "portcullis_sessions_active", METRIC_GAUGE,
	    METRIC_SRC_WORKER, "SMTP sessions open now, by listener.",
	    L("listener") },
	[M_TLS_HANDSHAKES] = { "portcullis_tls_handshakes", METRIC_COUNTER,
	    METRIC_SRC_WORKER, "TLS handshakes with clients (STARTTLS and "
	    "implicit), by protocol version and result.",
	    L("listener", "version", "result") },
	[M_BYTES_RECEIVED] = { "portcullis_received_bytes", METRIC_COUNTER,
	    METRIC_SRC_WORKER, "Octets read from clients, after TLS, by "
	    "listener.", L("listener") },
	[M_MESSAGES] = { "portcullis_messages", METRIC_COUNTER,
	    METRIC_SRC_WORKER, "Messages at the end of DATA, accepted or "
	    "refused, by reason.", L("result", "reason") },
	[M_DELIVERIES] = { "portcullis_deliveries", METRIC_COUNTER,
	    METRIC_SRC_WORKER, "Deliveries, by method and outcome.",
	    L("method", "outcome") },
	[M_DELIVERY_SECONDS] = { "portcullis_delivery_duration_seconds",
	    METRIC_HISTOGRAM, METRIC_SRC_WORKER, "Time from the end of DATA "
	    "to the delivery's answer, by method.", L("method") },
	[M_AUTH_ATTEMPTS] = { "portcullis_auth_attempts", METRIC_COUNTER,
	    METRIC_SRC_AUTHD, "AUTH attempts decided by authd, by mechanism, "
	    "deciding checker (none: nobody said ok) and result.",
	    L("mechanism", "checker", "result") },
	[M_AUTH_SECONDS] = { "portcullis_auth_duration_seconds",
	    METRIC_HISTOGRAM, METRIC_SRC_AUTHD, "Time authd took to decide "
	    "an AUTH attempt, by deciding checker.", L("checker") },
	[M_CACHE_LOOKUPS] = { "portcullis_cache_lookups", METRIC_COUNTER,
	    METRIC_SRC_AUTHD, "Lookups of a cache checker: hit, miss, "
	    "negative (a refused secret remembered), stale (an expired "
	    "entry answered for a provider that failed).",
	    L("checker", "result") },
	[M_CHECKER_UP] = { "portcullis_checker_up", METRIC_GAUGE,
	    METRIC_SRC_AUTHD, "1 if the checker can decide now, 0 if its "
	    "backend is down (circuit breaker open, no usable keys).",
	    L("checker") },
	[M_CHECKER_BREAKER_OPEN] = { "portcullis_checker_breaker_open",
	    METRIC_GAUGE, METRIC_SRC_AUTHD, "1 while a remote checker's "
	    "circuit breaker is open.", L("checker") },
	[M_CHECKER_REQUEST_SECONDS] = {
	    "portcullis_checker_request_duration_seconds", METRIC_HISTOGRAM,
	    METRIC_SRC_AUTHD, "Requests of a remote checker to its backend, "
	    "by checker.", L("checker") },
	/*
	 * authd's penalty and limit counters (authd/fleet.c), the ones
	 * authctl stats prints, each under its name: a word of the code,
	 * never an address or a user.
	 */
	[M_PENALTIES] = { "portcullis_penalties", METRIC_COUNTER,
	    METRIC_SRC_AUTHD, "Penalties, limits and shared-state events, "
	    "by kind (authctl stats's counters).", L("kind") },
};

/* 1 ms to 5 s: an AUTH against a remote provider, a relay's answer. */
const uint64_t metric_bucket_usec[METRIC_BUCKETS] = {
	1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000,
};

struct series {
	uint32_t	 id;
	char		 label[METRIC_LABELS_MAX][METRIC_LABEL_MAX];
	uint64_t	 v[METRIC_VALUES];
};

static struct series	*series;
static size_t		 nseries, capseries;
static void		(*collector)(void);

static size_t
def_nlabels(const struct metric_def *d)
{
	size_t	 n = 0;

	while (n < METRIC_LABELS_MAX && d->labels[n] != NULL)
		n++;
	return n;
}

/* The series of id with the label values in ap; NULL if full. */
static struct series *
series_vget(enum metric_id id, va_list ap)
{
	char		 label[METRIC_LABELS_MAX][METRIC_LABEL_MAX];
	struct series	*s, *ns;
	size_t		 n = def_nlabels(&metric_defs[id]), i;
	const char	*v;
	static int	 warned;

	memset(label, 0, sizeof(label));
	for (i = 0; i < n; i++) {
		v = va_arg(ap, const char *);
		(void)strlcpy(label[i], v != NULL ? v : "", sizeof(label[i]));
	}
	for (i = 0; i < nseries; i++) {
		s = &series[i];
		if (s->id == (uint32_t)id &&
		    memcmp(s->label, label, sizeof(label)) == 0)
			return s;
	}
	if (nseries == METRICS_SERIES_MAX) {
		if (!warned++)
			log_warnx("metrics: more than %d series, %s dropped",
			    METRICS_SERIES_MAX, metric_defs[id].name);
		return NULL;
	}
	if (nseries == capseries) {
		capseries = capseries ? capseries * 2 : 32;
		if ((ns = reallocarray(series, capseries,
		    sizeof(*series))) == NULL)
			fatal("metrics");
		series = ns;
	}
	s = &series[nseries++];
	memset(s, 0, sizeof(*s));
	s->id = (uint32_t)id;
	memcpy(s->label, label, sizeof(label));
	return s;
}

void
metrics_add(enum metric_id id, uint64_t n, ...)
{
	struct series	*s;
	va_list		 ap;

	va_start(ap, n);
	s = series_vget(id, ap);
	va_end(ap);
	if (s != NULL)
		s->v[0] += n;
}

void
metrics_set(enum metric_id id, int64_t v, ...)
{
	struct series	*s;
	va_list		 ap;

	va_start(ap, v);
	s = series_vget(id, ap);
	va_end(ap);
	if (s != NULL)
		s->v[0] = (uint64_t)v;
}

void
metrics_observe(enum metric_id id, uint64_t usec, ...)
{
	struct series	*s;
	va_list		 ap;
	size_t		 b;

	va_start(ap, usec);
	s = series_vget(id, ap);
	va_end(ap);
	if (s == NULL)
		return;
	for (b = 0; b < METRIC_BUCKETS && usec > metric_bucket_usec[b]; b++)
		;
	s->v[b]++;
	s->v[METRIC_BUCKETS + 1] += usec;
}

uint64_t
metrics_since_usec(const struct timespec *since)
{
	struct timespec	 now;
	int64_t		 usec;

	clock_gettime(CLOCK_MONOTONIC, &now);
	usec = (int64_t)(now.tv_sec - since->tv_sec) * 1000000 +
	    (now.tv_nsec - since->tv_nsec) / 1000;
	return usec < 0 ? 0 : (uint64_t)usec;
}

uint64_t
metrics_get(enum metric_id id, ...)
{
	struct series	*s;
	va_list		 ap;

	va_start(ap, id);
	s = series_vget(id, ap);
	va_end(ap);
	return s != NULL ? s->v[0] : 0;
}

void
metrics_foreach(enum metric_id id, void (*cb)(const char
    label[METRIC_LABELS_MAX][METRIC_LABEL_MAX], const uint64_t *, void *),
    void *arg)
{
	for (size_t i = 0; i < nseries; i++)
		if (series[i].id == (uint32_t)id)
			cb((const char (*)[METRIC_LABEL_MAX])series[i].label,
			    series[i].v, arg);
}

void
metrics_collector(void (*fn)(void))
{
	collector = fn;
}

int
metrics_answer(struct imsgev *iev, struct imsg *imsg)
{
	struct metrics_ask	 ask;
	struct metrics_sample	 smp;

	imsgev_data(imsg, &ask, sizeof(ask));
	if (collector != NULL)
		collector();
	for (size_t i = 0; i < nseries; i++) {
		memset(&smp, 0, sizeof(smp));
		smp.seq = ask.seq;
		smp.metric = series[i].id;
		memcpy(smp.label, series[i].label, sizeof(smp.label));
		memcpy(smp.v, series[i].v, sizeof(smp.v));
		imsgev_compose(iev, IMSG_METRICS_SAMPLE, 0, -1, &smp,
		    sizeof(smp));
	}
	imsgev_compose(iev, IMSG_METRICS_END, 0, -1, &ask, sizeof(ask));
	return 0;
}

static const struct imsg_dispatch from_metrics[] = {
	{ IMSG_METRICS_ASK, sizeof(struct metrics_ask), 0, metrics_answer },
	{ 0, 0, 0, NULL }
};

static void
metrics_channel_closed(struct imsgev *iev)
{
	log_debug("%s: channel closed", iev->name);
}

void
metrics_channel_open(struct imsgev *iev, struct event_base *base, int fd,
    const char *name)
{
	if (iev->open) {
		iev->closed = NULL;	/* replaced: a new metrics process */
		imsgev_close(iev);
	}
	if (imsgev_init(iev, base, fd, 0, name, NULL, metrics_channel_closed,
	    NULL) == -1) {
		log_warn("%s channel", name);
		close(fd);
		return;
	}
	imsgev_set_table(iev, from_metrics);
	/* A metrics process that asks and never reads stops being read. */
	iev->wq_max = METRICS_WQ_MAX;
}

/*
 * A sample as the metrics process received it: the metric must exist
 * and be counted by that kind of process; strings are terminated and
 * the labels the metric does not have are cleared, so that two equal
 * series compare equal.
 */
int
metrics_check(struct metrics_sample *s, uint32_t role)
{
	const struct metric_def	*d;
	size_t			 n;

	if (s->metric >= M__COUNT)
		return -1;
	d = &metric_defs[s->metric];
	if ((uint32_t)d->source != role)
		return -1;
	n = def_nlabels(d);
	for (size_t i = 0; i < METRIC_LABELS_MAX; i++) {
		s->label[i][METRIC_LABEL_MAX - 1] = '\0';
		if (i >= n)
			memset(s->label[i], 0, sizeof(s->label[i]));
	}
	s->pad = 0;
	s->seq = 0;
	return 0;
}

static int
in_cmp(const void *a, const void *b)
{
	const struct metrics_in	*x = a, *y = b;

	if (x->s.metric != y->s.metric)
		return x->s.metric < y->s.metric ? -1 : 1;
	if (x->slot != y->slot)
		return x->slot < y->slot ? -1 : 1;
	return memcmp(x->s.label, y->s.label, sizeof(x->s.label));
}

/* The same series twice (a retiring worker and its successor): one. */
static size_t
in_merge(struct metrics_in *in, size_t n)
{
	size_t	 out = 0;

	qsort(in, n, sizeof(*in), in_cmp);
	for (size_t i = 0; i < n; i++) {
		if (out > 0 && in_cmp(&in[out - 1], &in[i]) == 0) {
			for (size_t v = 0; v < METRIC_VALUES; v++)
				in[out - 1].s.v[v] += in[i].s.v[v];
			continue;
		}
		if (out != i)
			in[out] = in[i];
		out++;
	}
	return out;
}

/* A label value, escaped as both formats say: \\, \", \n. */
static void
put_value(FILE *f, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			fprintf(f, "\\%c", *v);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

/* {worker="0",a="x",le="0.5"}: le may be NULL. */
static void
put_labels(FILE *f, const struct metrics_in *m, const char *le)
{
	const struct metric_def	*d = &metric_defs[m->s.metric];
	size_t			 n = def_nlabels(d);
	const char		*sep = "";

	if (n == 0 && d->source != METRIC_SRC_WORKER && le == NULL)
		return;
	fputc('{', f);
	if (d->source == METRIC_SRC_WORKER) {
		fprintf(f, "worker=\"%u\"", m->slot);
		sep = ",";
	}
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "%s%s=\"", sep, d->labels[i]);
		put_value(f, m->s.label[i]);
		fputc('"', f);
		sep = ",";
	}
	if (le != NULL)
		fprintf(f, "%sle=\"%s\"", sep, le);
	fputc('}', f);
}

static void
put_histogram(FILE *f, const char *name, const struct metrics_in *m)
{
	char		 le[32];
	uint64_t	 cum = 0;

	for (size_t b = 0; b <= METRIC_BUCKETS; b++) {
		cum += m->s.v[b];
		if (b < METRIC_BUCKETS)
			snprintf(le, sizeof(le), "%g",
			    (double)metric_bucket_usec[b] / 1e6);
		else
			strlcpy(le, "+Inf", sizeof(le));
		fprintf(f, "%s_bucket", name);
		put_labels(f, m, le);
		fprintf(f, " %llu\n", (unsigned long long)cum);
	}
	fprintf(f, "%s_sum", name);
	put_labels(f, m, NULL);
	fprintf(f, " %.6f\n", (double)m->s.v[METRIC_BUCKETS + 1] / 1e6);
	fprintf(f, "%s_count", name);
	put_labels(f, m, NULL);
	fprintf(f, " %llu\n", (unsigned long long)cum);
}

static void
put_sample(FILE *f, const struct metric_def *d, const struct metrics_in *m)
{
	switch (d->type) {
	case METRIC_HISTOGRAM:
		put_histogram(f, d->name, m);
		return;
	case METRIC_COUNTER:
		fprintf(f, "%s_total", d->name);
		put_labels(f, m, NULL);
		fprintf(f, " %llu\n", (unsigned long long)m->s.v[0]);
		return;
	case METRIC_INFO:
		fprintf(f, "%s_info", d->name);
		put_labels(f, m, NULL);
		fputs(" 1\n", f);
		return;
	case METRIC_GAUGE:
		fprintf(f, "%s", d->name);
		put_labels(f, m, NULL);
		fprintf(f, " %lld\n", (long long)m->s.v[0]);
		return;
	}
}

/*
 * The family's header.  Text 0.0.4 names a counter's family with its
 * _total and has no info type; OpenMetrics names the family without
 * the suffixes and says info.
 */
static void
put_family(FILE *f, const struct metric_def *d, int om)
{
	const char	*suffix = "", *type;

	switch (d->type) {
	case METRIC_COUNTER:
		type = "counter";
		suffix = om ? "" : "_total";
		break;
	case METRIC_HISTOGRAM:
		type = "histogram";
		break;
	case METRIC_INFO:
		type = om ? "info" : "gauge";
		suffix = om ? "" : "_info";
		break;
	default:
		type = "gauge";
	}
	fprintf(f, "# HELP %s%s %s\n", d->name, suffix, d->help);
	fprintf(f, "# TYPE %s%s %s\n", d->name, suffix, type);
}

int
metrics_render(FILE *f, struct metrics_in *in, size_t n, int om)
{
	size_t		 i = 0;
	uint32_t	 id;

	n = in_merge(in, n);
	while (i < n) {
		id = in[i].s.metric;
		put_family(f, &metric_defs[id], om);
		for (; i < n && in[i].s.metric == id; i++)
			put_sample(f, &metric_defs[id], &in[i]);
	}
	if (om)
		fputs("# EOF\n", f);
	return ferror(f) ? -1 : 0;
}
