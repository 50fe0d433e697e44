/*
 * hashpool.c -- a fixed set of threads for password verification.
 *
 * Hashes are made to be slow (tens of milliseconds for yescrypt): on
 * the event loop one login would stall every other.  Jobs queue under
 * a mutex; a finished job goes to a done queue and a byte on a pipe
 * wakes the loop, which runs the job's done() there, single-threaded.
 */

#include <sys/queue.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "hashpool.h"
#include "log.h"

struct job {
	TAILQ_ENTRY(job)	 entry;
	void			(*work)(void *);
	void			(*done)(void *);
	void			*arg;
};
TAILQ_HEAD(jobq, job);

static struct jobq	 todo = TAILQ_HEAD_INITIALIZER(todo);
static struct jobq	 finished = TAILQ_HEAD_INITIALIZER(finished);
static pthread_mutex_t	 lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 more = PTHREAD_COND_INITIALIZER;
static int		 wake[2] = { -1, -1 };
static struct event	*wake_ev;
static int		 idle;		/* threads waiting for a job */

static void *
hashpool_thread(void *arg)
{
	struct job	*j;
	char		 c = 0;
	int		 first;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&lock);
		while ((j = TAILQ_FIRST(&todo)) == NULL) {
			idle++;
			pthread_cond_wait(&more, &lock);
			idle--;
		}
		TAILQ_REMOVE(&todo, j, entry);
		pthread_mutex_unlock(&lock);

		j->work(j->arg);

		/*
		 * One wake-up per batch: if finished was not empty, the
		 * loop has a byte to read already and will take this job
		 * with the others.  Under load that saves most of the
		 * pipe writes and the cross-core wake-ups they cost.
		 */
		pthread_mutex_lock(&lock);
		first = TAILQ_EMPTY(&finished);
		TAILQ_INSERT_TAIL(&finished, j, entry);
		pthread_mutex_unlock(&lock);
		/* A full pipe already holds a wake-up: nothing is lost. */
		while (first && write(wake[1], &c, 1) == -1 && errno == EINTR)
			;
	}
	return NULL;
}

static void
hashpool_wake(evutil_socket_t fd, short ev, void *arg)
{
	struct jobq	 done = TAILQ_HEAD_INITIALIZER(done);
	struct job	*j;
	char		 buf[256];

	(void)ev; (void)arg;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&lock);
	TAILQ_CONCAT(&done, &finished, entry);
	pthread_mutex_unlock(&lock);
	while ((j = TAILQ_FIRST(&done)) != NULL) {
		TAILQ_REMOVE(&done, j, entry);
		j->done(j->arg);
		free(j);
	}
}

static struct event_base	*pool_base;

/* The loop the pool's results come back on; NULL before init. */
struct event_base *
hashpool_base(void)
{
	return pool_base;
}

int
hashpool_init(struct event_base *base, int nthreads)
{
	pool_base = base;
	pthread_t	 t;

	if (pipe2(wake, O_NONBLOCK | O_CLOEXEC) == -1)
		return -1;
	wake_ev = event_new(base, wake[0], EV_READ | EV_PERSIST,
	    hashpool_wake, NULL);
	if (wake_ev == NULL || event_add(wake_ev, NULL) == -1)
		return -1;
	for (int i = 0; i < nthreads; i++) {
		if ((errno = pthread_create(&t, NULL, hashpool_thread,
		    NULL)) != 0)
			return -1;
		pthread_detach(t);
	}
	return 0;
}

void
hashpool_submit(void (*work)(void *), void (*done)(void *), void *arg)
{
	struct job	*j;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		fatal("calloc");
	j->work = work;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&lock);
	TAILQ_INSERT_TAIL(&todo, j, entry);
	/* A busy thread takes the next job itself when it is done. */
	if (idle > 0)
		pthread_cond_signal(&more);
	pthread_mutex_unlock(&lock);
}
