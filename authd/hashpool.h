/*
 * hashpool.h -- the threads that verify passwords, so that authd's
 * event loop never waits for a hash.
 */
#ifndef PORTCULLIS_HASHPOOL_H
#define PORTCULLIS_HASHPOOL_H

#include <event2/event.h>

int	hashpool_init(struct event_base *, int nthreads);
struct event_base *hashpool_base(void);
/* work(arg) runs on a pool thread; done(arg) later on the loop. */
void	hashpool_submit(void (*work)(void *), void (*done)(void *),
	    void *arg);

#endif /* PORTCULLIS_HASHPOOL_H */
