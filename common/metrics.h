/*
 * metrics.h -- the metrics every process counts, in one table, the
 * counting itself, and the Prometheus text that portcullis-metrics
 * makes of them.
 *
 * Counters live where they are counted (a worker's sessions in that
 * worker, AUTH verdicts in authd, restarts in master), so the metrics
 * process holds nothing that a restart of it would lose: it asks each
 * process over imsg (IMSG_METRICS_ASK) and each answers with one
 * IMSG_METRICS_SAMPLE per series it has (metrics_answer()).
 */
#ifndef PORTCULLIS_METRICS_H
#define PORTCULLIS_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include "proto.h"

/* portcullis_build_info's version; the package may say otherwise. */
#ifndef PORTCULLIS_VERSION
#define PORTCULLIS_VERSION	"0.1.0"
#endif

enum metric_type {
	METRIC_COUNTER,
	METRIC_GAUGE,
	METRIC_HISTOGRAM,	/* seconds, METRIC_BUCKETS fixed buckets */
	METRIC_INFO,		/* a gauge of 1; its labels say it */
};

/* Who counts a metric: the only peer whose samples of it are taken. */
enum metric_source {
	METRIC_SRC_MASTER = METRICS_PEER_MASTER,
	METRIC_SRC_AUTHD = METRICS_PEER_AUTHD,
	METRIC_SRC_WORKER = METRICS_PEER_WORKER,	/* + worker="N" */
	METRIC_SRC_METRICS,	/* the metrics process itself */
};

/* The order of common/metrics.c's table, which is the output's order. */
enum metric_id {
	M_BUILD_INFO,
	M_CONFIG_GENERATION,
	M_CONFIG_RELOADS,
	M_PROCESS_RESTARTS,
	M_PEER_UP,
	M_HTTP_REQUESTS,
	M_SESSIONS,
	M_SESSIONS_ACTIVE,
	M_TLS_HANDSHAKES,
	M_BYTES_RECEIVED,
	M_MESSAGES,
	M_DELIVERIES,
	M_DELIVERY_SECONDS,
	M_AUTH_ATTEMPTS,
	M_AUTH_SECONDS,
	M_CACHE_LOOKUPS,
	M_CHECKER_UP,
	M_CHECKER_BREAKER_OPEN,
	M_CHECKER_REQUEST_SECONDS,
	M_PENALTIES,
	M__COUNT
};

struct metric_def {
	const char		*name;	/* family name: no _total */
	enum metric_type	 type;
	enum metric_source	 source;
	const char		*help;
	const char		*labels[METRIC_LABELS_MAX]; /* NULL-ended */
};

extern const struct metric_def	metric_defs[M__COUNT];
/* The upper bounds of the finite buckets, in microseconds. */
extern const uint64_t		metric_bucket_usec[METRIC_BUCKETS];

/*
 * Counting, in the process that counts.  The label values follow the
 * definition's labels, in order, as many as it has; they must be
 * bounded (a listener's or checker's name, a word of the code's own),
 * never a user name or an address.
 */
void	metrics_add(enum metric_id, uint64_t n, ...);
void	metrics_set(enum metric_id, int64_t v, ...);
void	metrics_observe(enum metric_id, uint64_t usec, ...);
/* Microseconds since a CLOCK_MONOTONIC time, for metrics_observe(). */
struct timespec;
uint64_t metrics_since_usec(const struct timespec *);
/* The value of a counter or gauge series; 0 if it does not exist. */
uint64_t metrics_get(enum metric_id, ...);
/* Each series of a metric: its label values and values. */
void	metrics_foreach(enum metric_id, void (*)(const char
	    label[METRIC_LABELS_MAX][METRIC_LABEL_MAX], const uint64_t *,
	    void *), void *);
/* Called before each answer: gauges that are read, not counted. */
void	metrics_collector(void (*)(void));

struct imsgev;
struct imsg;
struct event_base;
/* The IMSG_METRICS_ASK handler, for a dispatch table. */
int	metrics_answer(struct imsgev *, struct imsg *);
/* A channel from master's IMSG_METRICS_CHANNEL: replaces the last. */
void	metrics_channel_open(struct imsgev *, struct event_base *, int fd,
	    const char *name);

/*
 * Rendering, in the metrics process: a sample as it came (peer role
 * and slot from the channel it came on), checked by metrics_check().
 */
struct metrics_in {
	uint32_t		 role;	/* METRICS_PEER_*, or a source */
	uint32_t		 slot;
	struct metrics_sample	 s;
};
int	metrics_check(struct metrics_sample *, uint32_t role);
/* Sorts and merges in place; writes text 0.0.4 or OpenMetrics. */
int	metrics_render(FILE *, struct metrics_in *, size_t n,
	    int openmetrics);

#endif /* PORTCULLIS_METRICS_H */
