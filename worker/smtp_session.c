/*
 * smtp_session.c -- accepting connections and the session skeleton.
 *
 * Every worker watches the same listening sockets; whichever wins the
 * accept serves the client.  A session lives in one bufferevent and
 * never blocks the loop.  This file holds the greeting, QUIT and the
 * shutdown path; the command engine grows here.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "log.h"
#include "worker.h"

#define SMTP_LINE_MAX	512	/* RFC 5321 4.5.3.1.4, with CR LF */

struct listen_event {
	struct event		*ev;
	struct listener		*listener;
};

static struct listen_event	 listen_events[CONF_LISTENERS_MAX];
static int			 nlisten_events;
static struct event		*accept_pause_ev;

static void	session_read(struct bufferevent *, void *);
static void	session_write(struct bufferevent *, void *);
static void	session_event(struct bufferevent *, short, void *);

static void
session_reply(struct session *s, const char *line)
{
	evbuffer_add_printf(bufferevent_get_output(s->bev), "%s\r\n", line);
}

/* Send a last line, stop reading, free once the output has drained. */
static void
session_close_after(struct session *s, const char *line)
{
	session_reply(s, line);
	s->closing = 1;
	bufferevent_disable(s->bev, EV_READ);
}

void
session_free(struct session *s)
{
	TAILQ_REMOVE(&worker->sessions, s, entry);
	worker->nsessions--;
	bufferevent_free(s->bev);
	log_debug("session %016llx: closed", (unsigned long long)s->id);
	free(s);
	worker_session_gone();
}

static void
session_command(struct session *s, const char *line)
{
	if (strcasecmp(line, "QUIT") == 0)
		session_close_after(s, "221 2.0.0 Bye");
	else if (strcasecmp(line, "NOOP") == 0)
		session_reply(s, "250 2.0.0 Ok");
	else
		session_reply(s, "502 5.5.1 Command not implemented");
}

static void
session_read(struct bufferevent *bev, void *arg)
{
	struct session	*s = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);
	char		*line;
	size_t		 len;

	while (!s->closing &&
	    (line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF)) != NULL) {
		if (len + 2 > SMTP_LINE_MAX)
			session_reply(s, "500 5.5.2 Line too long");
		else
			session_command(s, line);
		free(line);
	}
	if (!s->closing && evbuffer_get_length(in) > SMTP_LINE_MAX)
		session_close_after(s, "500 5.5.2 Line too long");
	if (s->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		session_free(s);
}

static void
session_write(struct bufferevent *bev, void *arg)
{
	struct session	*s = arg;

	(void)bev;
	if (s->closing)
		session_free(s);
}

static void
session_event(struct bufferevent *bev, short events, void *arg)
{
	struct session	*s = arg;

	(void)bev;
	if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		session_free(s);
}

static void
session_new(int fd, struct listener *l, struct sockaddr_storage *ss,
    socklen_t sslen)
{
	struct session	*s;
	char		 host[NI_MAXHOST], reply[CONF_HOST_MAX + 32];

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warn("session");
		close(fd);
		return;
	}
	s->bev = bufferevent_socket_new(worker->base, fd,
	    BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		log_warnx("bufferevent_socket_new");
		close(fd);
		free(s);
		return;
	}
	s->listener = l;
	s->id = ((uint64_t)arc4random() << 32) | arc4random();
	TAILQ_INSERT_TAIL(&worker->sessions, s, entry);
	worker->nsessions++;
	if (getnameinfo((struct sockaddr *)ss, sslen, host, sizeof(host),
	    NULL, 0, NI_NUMERICHOST) != 0)
		strlcpy(host, "unknown", sizeof(host));
	log_info("session %016llx: connection from %s on %s",
	    (unsigned long long)s->id, host, l->name);

	bufferevent_setcb(s->bev, session_read, session_write, session_event,
	    s);
	snprintf(reply, sizeof(reply), "220 %s ESMTP portcullis",
	    worker->conf->hostname);
	session_reply(s, reply);
	bufferevent_enable(s->bev, EV_READ);
}

static void
accept_resume(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd; (void)ev; (void)arg;
	if (!worker->shutting_down)
		smtp_listen_start();
}

static void
accept_pause(void)
{
	struct timeval	 tv = { 1, 0 };

	smtp_listen_stop();
	if (accept_pause_ev == NULL)
		accept_pause_ev = evtimer_new(worker->base, accept_resume,
		    NULL);
	evtimer_add(accept_pause_ev, &tv);
}

static void
smtp_accept(evutil_socket_t lfd, short ev, void *arg)
{
	struct listener		*l = arg;
	struct sockaddr_storage	 ss;
	socklen_t		 sslen = sizeof(ss);
	int			 fd;

	(void)ev;
	fd = accept4(lfd, (struct sockaddr *)&ss, &sslen,
	    SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd == -1) {
		switch (errno) {
		case EAGAIN:		/* another worker won the race */
		case EINTR:
		case ECONNABORTED:
			return;
		case EMFILE:
		case ENFILE:
			log_warn("worker %u: accept", worker->id);
			accept_pause();
			return;
		default:
			log_warn("worker %u: accept", worker->id);
			return;
		}
	}
	session_new(fd, l, &ss, sslen);
}

void
smtp_listen_start(void)
{
	struct listener	*l;

	if (nlisten_events == 0) {
		TAILQ_FOREACH(l, &worker->conf->listeners, entry) {
			if (l->fd == -1 || nlisten_events == CONF_LISTENERS_MAX)
				continue;
			listen_events[nlisten_events].listener = l;
			listen_events[nlisten_events].ev = event_new(
			    worker->base, l->fd, EV_READ | EV_PERSIST,
			    smtp_accept, l);
			nlisten_events++;
		}
	}
	for (int i = 0; i < nlisten_events; i++)
		event_add(listen_events[i].ev, NULL);
}

void
smtp_listen_stop(void)
{
	for (int i = 0; i < nlisten_events; i++)
		event_del(listen_events[i].ev);
	if (accept_pause_ev != NULL)
		evtimer_del(accept_pause_ev);
}

/* Shutting down: give the sockets back so the port stops accepting. */
void
smtp_listen_close(void)
{
	smtp_listen_stop();
	for (int i = 0; i < nlisten_events; i++) {
		event_free(listen_events[i].ev);
		close(listen_events[i].listener->fd);
		listen_events[i].listener->fd = -1;
	}
	nlisten_events = 0;
}

void
smtp_close_all(const char *reply)
{
	struct session	*s;

	TAILQ_FOREACH(s, &worker->sessions, entry)
		if (!s->closing)
			session_close_after(s, reply);
}
