/*
 * tickets.c -- the TLS session ticket keys every worker shares.
 *
 * A ticket (RFC 5077; RFC 8446 4.6.1 for TLS 1.3) is the session's
 * state sealed under a key of the server's.  For a ticket issued by one
 * worker to resume on another, every worker must hold the same keys,
 * so master makes them and hands them out, like the configuration.
 *
 * Forward secrecy then rests on the keys not living long: a key seals
 * new tickets for one period (tls-ticket-lifetime), is kept one more
 * period to open the tickets it sealed (their lifetime hint is one
 * period, so none it sealed is still valid after that), and is wiped
 * then, here and in every worker.  A TLS 1.3 resumption still runs a
 * fresh (EC)DHE exchange (psk_dhe_ke, the only mode OpenSSL offers),
 * so a stolen ticket key does not open the traffic of resumed
 * sessions; it opens the TLS 1.2 ones sealed under it, hence the
 * short life.  The keys are never written to disk: a restart of
 * master costs clients one full handshake.
 */

#include <sys/types.h>
#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log.h"
#include "master.h"
#include "proto.h"

static struct tls_ticket_keys	 keys;
static struct event		*rotate_ev;
static int			 period;	/* seconds, as scheduled */

static void
key_make(struct tls_ticket_key *k)
{
	arc4random_buf(k->name, sizeof(k->name));
	arc4random_buf(k->aes, sizeof(k->aes));
	arc4random_buf(k->hmac, sizeof(k->hmac));
}

/* To one worker: now, and after each rotation. */
void
tickets_send(struct child *c)
{
	if (c->role != ROLE_WORKER || keys.count == 0)
		return;
	if (imsgev_compose(&c->iev, IMSG_TLS_TICKET_KEYS, 0, -1, &keys,
	    sizeof(keys)) == -1)
		log_warnx("%s: ticket keys not sent", c->name);
}

static void
tickets_send_all(void)
{
	struct child	*c;

	TAILQ_FOREACH(c, &master->workers, entry)
		if (child_running(c))
			tickets_send(c);
}

static void
tickets_rotate(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	/* The sealing key opens only; the one before it goes. */
	keys.key[1] = keys.key[0];
	key_make(&keys.key[0]);
	keys.count = 2;
	tickets_send_all();
	log_debug("tls: ticket keys rotated");
}

static void
tickets_off(void)
{
	if (rotate_ev != NULL)
		event_free(rotate_ev);
	rotate_ev = NULL;
	period = 0;
	explicit_bzero(&keys, sizeof(keys));
}

/*
 * At start and at each reload, before the workers of the generation
 * start.  The keys outlive a reload, so that tickets issued before it
 * still resume; a changed lifetime takes effect at the next rotation.
 */
void
tickets_configure(const struct portcullis_conf *conf)
{
	struct timeval	 tv;

	if (!conf->tls_tickets) {
		if (keys.count != 0)
			log_info("tls: session tickets off, keys wiped");
		tickets_off();
		return;
	}
	if (keys.count == 0) {
		key_make(&keys.key[0]);
		keys.count = 1;
	}
	keys.lifetime = (uint32_t)conf->tls_ticket_lifetime;
	if (rotate_ev == NULL &&
	    (rotate_ev = event_new(master->base, -1, EV_PERSIST,
	    tickets_rotate, NULL)) == NULL)
		fatalx("event_new");
	/*
	 * A reload must not restart the period, or reloads more frequent
	 * than it would keep one key sealing for ever.  A new period
	 * starts with a new key.
	 */
	if (period == conf->tls_ticket_lifetime &&
	    event_pending(rotate_ev, EV_TIMEOUT, NULL))
		return;
	if (period != 0)
		tickets_rotate(-1, 0, NULL);
	period = conf->tls_ticket_lifetime;
	tv.tv_sec = period;
	tv.tv_usec = 0;
	event_add(rotate_ev, &tv);
}

void
tickets_shutdown(void)
{
	tickets_off();
}
