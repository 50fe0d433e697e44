/*
 * smtpsink.c -- an SMTP server that does nothing: canned replies, AUTH
 * always succeeds, messages are read and forgotten.  make bench runs
 * smtpload(1) against it to find the load generator's own ceiling for
 * each scenario (with the sink's small cost on the same machine).
 * Plaintext only; TLS is measured apart (tlsrate).
 *
 * usage: smtpsink PORT
 * Prints "ready" once it listens on 127.0.0.1:PORT; runs until killed.
 */

#include <sys/epoll.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <err.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define BUFSZ	16384

struct conn {
	int	 fd;
	int	 in_data;
	size_t	 len;
	char	 buf[BUFSZ];
};

static const char ehlo[] = "250-sink\r\n250-PIPELINING\r\n"
    "250-AUTH PLAIN\r\n250 8BITMIME\r\n";

/* Replies are tiny and the peer reads them: a short write ends it. */
static int
reply(struct conn *c, const char *s)
{
	size_t n = strlen(s);

	return send(c->fd, s, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

/* One command line; -1 ends the connection. */
static int
command(struct conn *c, const char *line)
{
	if (strncasecmp(line, "EHLO", 4) == 0)
		return reply(c, ehlo);
	if (strncasecmp(line, "AUTH", 4) == 0)
		return reply(c, "235 2.7.0 ok\r\n");
	if (strncasecmp(line, "DATA", 4) == 0) {
		c->in_data = 1;
		return reply(c, "354 go on\r\n");
	}
	if (strncasecmp(line, "QUIT", 4) == 0) {
		reply(c, "221 bye\r\n");
		return -1;
	}
	return reply(c, "250 ok\r\n");
}

/* Consume complete lines (and message bodies) from the buffer. */
static int
process(struct conn *c)
{
	char	*p, *end;
	size_t	 off = 0;

	for (;;) {
		p = c->buf + off;
		end = memmem(p, c->len - off, "\r\n", 2);
		if (end == NULL)
			break;
		*end = '\0';
		off = (size_t)(end - c->buf) + 2;
		if (c->in_data) {
			if (strcmp(p, ".") == 0) {
				c->in_data = 0;
				if (reply(c, "250 2.0.0 accepted\r\n") == -1)
					return -1;
			}
			continue;
		}
		if (command(c, p) == -1)
			return -1;
	}
	memmove(c->buf, c->buf + off, c->len - off);
	c->len -= off;
	/* A line longer than the buffer: only in a body, drop it. */
	if (c->len == sizeof(c->buf)) {
		if (!c->in_data)
			return -1;
		memmove(c->buf, c->buf + c->len - 1, 1);
		c->len = 1;
	}
	return 0;
}

static void
drop(int ep, struct conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
}

int
main(int argc, char *argv[])
{
	struct sockaddr_in	 sin;
	struct epoll_event	 ev, evs[256];
	struct conn		*c;
	ssize_t			 n;
	int			 lfd, ep, fd, i, nev, one = 1;

	if (argc != 2)
		errx(2, "usage: smtpsink port");
	signal(SIGPIPE, SIG_IGN);
	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) == -1)
		err(1, "socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)atoi(argv[1]));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		err(1, "bind");
	if (listen(lfd, 4096) == -1)
		err(1, "listen");
	if ((ep = epoll_create1(0)) == -1)
		err(1, "epoll_create1");
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) == -1)
		err(1, "epoll_ctl");
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		if ((nev = epoll_wait(ep, evs, 256, -1)) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "epoll_wait");
		}
		for (i = 0; i < nev; i++) {
			if ((c = evs[i].data.ptr) != NULL) {
				n = read(c->fd, c->buf + c->len,
				    sizeof(c->buf) - c->len);
				if (n <= 0) {
					if (n == -1 && errno == EAGAIN)
						continue;
					drop(ep, c);
					continue;
				}
				c->len += (size_t)n;
				if (process(c) == -1)
					drop(ep, c);
				continue;
			}
			while ((fd = accept4(lfd, NULL, NULL,
			    SOCK_NONBLOCK)) != -1) {
				if ((c = calloc(1, sizeof(*c))) == NULL)
					err(1, NULL);
				c->fd = fd;
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				    sizeof(one));
				ev.events = EPOLLIN;
				ev.data.ptr = c;
				if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1 ||
				    reply(c, "220 sink ESMTP\r\n") == -1) {
					close(fd);
					free(c);
				}
			}
		}
	}
}
