/*
 * deliver.c -- hands each accepted message to the configured method.
 *
 * deliver_init() keeps the event base, the configuration and the
 * spool descriptor, and lets the method prepare what it needs while
 * the worker can still do so (before chroot: directory descriptors,
 * the relay's address and TLS context).  The other calls go to the
 * method through its deliver_ops.
 *
 * Lifetime, for every method: the caller owns a delivery from
 * deliver_begin() until deliver_end() or deliver_abort().  After
 * deliver_end() the method owns it and answers exactly once through
 * the done callback, either from inside deliver_end() (spool, console,
 * and a relay that had already failed) or later from the event loop
 * (a relay waiting for the next hop).  Until the callback ran, the
 * caller may still call deliver_abort(): that cancels the callback,
 * and a relay cuts its connection at once, so that the next hop drops
 * the transaction unless it had the final dot already (the client saw
 * no 250 and will send again).  Once the callback ran, the delivery is
 * gone and must not be touched.  The resume callback is only ever
 * called from the event loop, never from inside a deliver_*() call.
 */

#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "deliver_int.h"

struct deliver_env	 deliver_env = {
	.spool_fd = -1,
	.tmp_fd = -1,
	.new_fd = -1,
};

static const struct deliver_ops	*deliver_ops;

static const struct deliver_ops *
deliver_method_ops(enum deliver_method method)
{
	switch (method) {
	case DELIVER_SPOOL:
		return &deliver_spool_ops;
	case DELIVER_RELAY:
		return &deliver_relay_ops;
	case DELIVER_CONSOLE:
		return &deliver_console_ops;
	}
	return NULL;
}

int
deliver_init(struct event_base *base, struct portcullis_conf *conf,
    int spool_fd)
{
	const struct deliver_ops	*ops;

	if (deliver_ops != NULL && deliver_ops->cleanup != NULL)
		deliver_ops->cleanup();
	deliver_ops = NULL;

	if ((ops = deliver_method_ops(conf->deliver)) == NULL) {
		log_warnx("deliver: unknown delivery method %d",
		    (int)conf->deliver);
		return -1;
	}
	deliver_env.base = base;
	deliver_env.conf = conf;
	deliver_env.spool_fd = spool_fd;
	if (ops->init != NULL && ops->init() == -1)
		return -1;
	deliver_ops = ops;
	log_debug("deliver: method %s", ops->name);
	return 0;
}

struct delivery *
deliver_begin(const struct envelope *env, deliver_done_cb done, void *arg)
{
	if (deliver_ops == NULL) {
		log_warnx("session %016llx: delivery not initialised",
		    (unsigned long long)env->session_id);
		return NULL;
	}
	return deliver_ops->begin(env, done, arg);
}

int
deliver_write(struct delivery *d, const void *buf, size_t len)
{
	return d->ops->write(d, buf, len);
}

const char *
deliver_method(void)
{
	return deliver_ops != NULL ? deliver_ops->name : "none";
}

void
deliver_end(struct delivery *d)
{
	d->ops->end(d);
}

void
deliver_abort(struct delivery *d)
{
	d->ops->abort(d);
}

size_t
deliver_pending(struct delivery *d)
{
	if (d->ops->pending == NULL)
		return 0;
	return d->ops->pending(d);
}

void
deliver_set_resume(struct delivery *d, void (*resume)(void *))
{
	d->resume = resume;
}

void
deliver_head_init(struct delivery *d, const struct deliver_ops *ops,
    const struct envelope *env, deliver_done_cb done, void *arg)
{
	d->ops = ops;
	d->session_id = env->session_id;
	d->done = done;
	d->arg = arg;
	d->resume = NULL;
}

/*
 * Answer the session, once.  The callback may free whatever it likes,
 * the session included, so callers touch nothing of the session after
 * this and copy status and text out of memory the callback could free.
 */
void
deliver_done(struct delivery *d, int code, const char *status,
    const char *text)
{
	deliver_done_cb	 done = d->done;

	d->done = NULL;
	d->resume = NULL;
	if (done != NULL)
		done(d->arg, code, status, text);
}

/* The same for a method that is done with its delivery: free it first. */
void
deliver_finish(struct delivery *d, void *mem, int code, const char *status,
    const char *text)
{
	deliver_done_cb	 done = d->done;
	void		*arg = d->arg;

	free(mem);
	if (done != NULL)
		done(arg, code, status, text);
}

/*
 * Copy text from a peer for a reply line or a log: printable ASCII
 * only (anything else becomes '?'), at most dstsize - 1 characters,
 * leading and trailing blanks dropped.  Returns the length.
 */
size_t
deliver_sanitise(char *dst, size_t dstsize, const char *src)
{
	size_t	 n = 0;

	if (dstsize == 0)
		return 0;
	while (*src == ' ' || *src == '\t')
		src++;
	for (; *src != '\0' && n + 1 < dstsize; src++) {
		unsigned char	 c = *src;

		dst[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	while (n > 0 && dst[n - 1] == ' ')
		n--;
	dst[n] = '\0';
	return n;
}
