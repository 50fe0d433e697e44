/*
 * test_imsg.c -- unit tests for common/compat/imsg.c and imsg_buffer.c,
 * our imsg(3) for systems without one.
 *
 * Every test runs over a real AF_UNIX SOCK_STREAM socketpair.  They
 * check what callers rely on: messages arrive whole, in order and
 * intact through partial writes and reads; size limits hold on both
 * ends; a corrupt header fails the channel; imsg_get_data() insists on
 * the exact length; descriptors arrive where announced and are closed,
 * never leaked, everywhere else (counted in /proc/self/fd).  Run it
 * under ASan too: the corrupt-header tests exist to catch a read past
 * a buffer.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "imsg.h"

#define MAX_PAYLOAD	(MAX_IMSGSIZE - IMSG_HEADER_SIZE)
#define FD_MARK		0x80000000U	/* header len bit: fd attached */
#define WAIT_MS		5000

/* A regression that blocks must fail, not hang the suite. */
TestSuite(imsg, .timeout = 20);
TestSuite(ibuf, .timeout = 20);

static int
count_fds(void)
{
	DIR		*d;
	struct dirent	*de;
	int		 n = 0;

	d = opendir("/proc/self/fd");
	cr_assert_not_null(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;	/* the directory's own descriptor */
}

static int
fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

static void
mkpair(int sv[2], int flags)
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | flags, 0, sv), 0);
}

static void
shrink_buffers(int fd)
{
	int	 sz = 1024;

	cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)),
	    0);
	cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)),
	    0);
}

static void
wait_readable(int fd)
{
	struct pollfd	 pfd = { .fd = fd, .events = POLLIN };

	cr_assert_eq(poll(&pfd, 1, WAIT_MS), 1, "timed out waiting to read");
}

/* Read until one message is complete; return imsg_get()'s result. */
static ssize_t
get_one(struct imsgbuf *rx, struct imsg *imsg)
{
	ssize_t	 n;
	int	 rv;

	for (;;) {
		if ((n = imsg_get(rx, imsg)) != 0)
			return n;
		wait_readable(rx->fd);
		rv = imsgbuf_read(rx);
		if (rv != 1)
			return rv == 0 ? -2 : -1;
	}
}

static void
fill(unsigned char *p, size_t len, unsigned int seed)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		p[i] = (unsigned char)(seed * 31 + i * 7 + (i >> 8));
}

static int
check(const unsigned char *p, size_t len, unsigned int seed)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		if (p[i] != (unsigned char)(seed * 31 + i * 7 + (i >> 8)))
			return 0;
	return 1;
}

/* A pipe's write end has travelled and been closed everywhere. */
static int
pipe_writers_gone(int rfd)
{
	char	 c;
	int	 fl = fcntl(rfd, F_GETFL);

	fcntl(rfd, F_SETFL, fl | O_NONBLOCK);
	return read(rfd, &c, 1) == 0;
}

/* One byte from a pipe, or -1: never blocks a broken build forever. */
static int
read_byte(int rfd)
{
	unsigned char	 c;

	wait_readable(rfd);
	if (read(rfd, &c, 1) != 1)
		return -1;
	return c;
}

struct chan {
	int		 sv[2];
	struct imsgbuf	 tx, rx;
};

static void
chan_open(struct chan *c, int flags)
{
	mkpair(c->sv, flags);
	cr_assert_eq(imsgbuf_init(&c->tx, c->sv[0]), 0);
	cr_assert_eq(imsgbuf_init(&c->rx, c->sv[1]), 0);
}

static void
chan_close(struct chan *c)
{
	imsgbuf_clear(&c->tx);
	imsgbuf_clear(&c->rx);
	close(c->sv[0]);
	close(c->sv[1]);
}

static void
roundtrip(size_t len)
{
	struct chan	 c;
	struct imsg	 imsg;
	unsigned char	*out, *in;

	out = malloc(len + 1);
	in = malloc(len + 1);
	cr_assert(out != NULL && in != NULL);
	fill(out, len, 77);
	chan_open(&c, 0);

	cr_assert_eq(imsg_compose(&c.tx, 4242, 0xfeedbeef, 31337, -1, out,
	    len), 1);
	cr_assert_eq(imsgbuf_queuelen(&c.tx), 1);
	cr_assert_eq(imsgbuf_flush(&c.tx), 0);
	cr_assert_eq(imsgbuf_queuelen(&c.tx), 0);

	cr_assert_eq(get_one(&c.rx, &imsg), (ssize_t)(len + IMSG_HEADER_SIZE));
	cr_assert_eq(imsg_get_type(&imsg), 4242);
	cr_assert_eq(imsg_get_id(&imsg), 0xfeedbeef);
	cr_assert_eq(imsg_get_pid(&imsg), 31337);
	cr_assert_eq(imsg.hdr.len, len + IMSG_HEADER_SIZE);
	cr_assert_eq(imsg_get_len(&imsg), len);
	cr_assert_eq(imsg_get_fd(&imsg), -1);
	if (len == 0) {
		cr_assert_null(imsg.data);
		cr_assert_eq(imsg_get_data(&imsg, in, 1), -1);
		cr_assert_eq(errno, EBADMSG);
	} else {
		cr_assert(check(imsg.data, len, 77));
		cr_assert_eq(imsg_get_data(&imsg, in, len), 0);
		cr_assert(check(in, len, 77));
	}
	imsg_free(&imsg);
	cr_assert_eq(imsg_get(&c.rx, &imsg), 0, "no second message");

	chan_close(&c);
	free(out);
	free(in);
}

Test(imsg, roundtrip_empty)
{
	roundtrip(0);
}

Test(imsg, roundtrip_one_byte)
{
	roundtrip(1);
}

Test(imsg, roundtrip_max_payload)
{
	roundtrip(MAX_PAYLOAD);
}

Test(imsg, pid_zero_means_sender_pid)
{
	struct chan	 c;
	struct imsg	 imsg;

	chan_open(&c, 0);
	cr_assert_eq(imsg_compose(&c.tx, 1, 2, 0, -1, NULL, 0), 1);
	cr_assert_eq(imsgbuf_flush(&c.tx), 0);
	cr_assert_eq(get_one(&c.rx, &imsg), (ssize_t)IMSG_HEADER_SIZE);
	cr_assert_eq(imsg_get_pid(&imsg), getpid());
	imsg_free(&imsg);
	chan_close(&c);
}

Test(imsg, composev_and_create_add_close)
{
	struct chan	 c;
	struct imsg	 imsg;
	struct ibuf	*wbuf;
	struct iovec	 iov[3];
	char		 got[16];

	chan_open(&c, 0);
	iov[0].iov_base = "abc";
	iov[0].iov_len = 3;
	iov[1].iov_base = "";
	iov[1].iov_len = 0;
	iov[2].iov_base = "defgh";
	iov[2].iov_len = 5;
	cr_assert_eq(imsg_composev(&c.tx, 10, 11, 12, -1, iov, 3), 1);

	cr_assert_not_null(wbuf = imsg_create(&c.tx, 20, 21, 22, 6));
	cr_assert_eq(imsg_add(wbuf, "xyz", 3), 3);
	cr_assert_eq(imsg_add(wbuf, "123", 3), 3);
	imsg_close(&c.tx, wbuf);
	cr_assert_eq(imsgbuf_queuelen(&c.tx), 2);
	cr_assert_eq(imsgbuf_flush(&c.tx), 0);

	cr_assert_eq(get_one(&c.rx, &imsg), (ssize_t)(IMSG_HEADER_SIZE + 8));
	cr_assert_eq(imsg_get_type(&imsg), 10);
	cr_assert_eq(imsg_get_data(&imsg, got, 8), 0);
	cr_assert_arr_eq(got, "abcdefgh", 8);
	imsg_free(&imsg);

	cr_assert_eq(get_one(&c.rx, &imsg), (ssize_t)(IMSG_HEADER_SIZE + 6));
	cr_assert_eq(imsg_get_type(&imsg), 20);
	cr_assert_eq(imsg_get_id(&imsg), 21);
	cr_assert_eq(imsg_get_pid(&imsg), 22);
	cr_assert_eq(imsg_get_data(&imsg, got, 6), 0);
	cr_assert_arr_eq(got, "xyz123", 6);
	imsg_free(&imsg);
	chan_close(&c);
}

Test(imsg, compose_ibuf_and_forward)
{
	struct chan	 a, b;
	struct imsg	 imsg, fwd;
	struct ibuf	*payload;
	uint32_t	 v;

	chan_open(&a, 0);
	chan_open(&b, 0);
	cr_assert_not_null(payload = ibuf_dynamic(0, 64));
	cr_assert_eq(ibuf_add_n32(payload, 0x01020304), 0);
	cr_assert_eq(ibuf_add(payload, "tail", 4), 0);
	cr_assert_eq(imsg_compose_ibuf(&a.tx, 7, 8, 9, payload), 1);
	cr_assert_eq(imsgbuf_flush(&a.tx), 0);
	cr_assert_eq(get_one(&a.rx, &imsg), (ssize_t)(IMSG_HEADER_SIZE + 8));

	/* Forward, even after the payload was partly consumed. */
	cr_assert_eq(imsg_get_len(&imsg), 8);
	cr_assert_eq(imsg_forward(&b.tx, &imsg), 1);
	cr_assert_eq(imsgbuf_flush(&b.tx), 0);
	cr_assert_eq(get_one(&b.rx, &fwd), (ssize_t)(IMSG_HEADER_SIZE + 8));
	cr_assert_eq(imsg_get_type(&fwd), 7);
	cr_assert_eq(imsg_get_id(&fwd), 8);
	cr_assert_eq(imsg_get_pid(&fwd), 9);
	cr_assert_arr_eq(fwd.data, "\x01\x02\x03\x04tail", 8);
	{
		struct ibuf	 ib;

		cr_assert_eq(imsg_get_ibuf(&fwd, &ib), 0);
		cr_assert_eq(ibuf_get_n32(&ib, &v), 0);
		cr_assert_eq(v, 0x01020304);
	}
	imsg_free(&fwd);
	imsg_free(&imsg);

	/* An oversized ibuf is refused and consumed. */
	cr_assert_not_null(payload = ibuf_open(MAX_PAYLOAD + 1));
	cr_assert_eq(ibuf_add_zero(payload, MAX_PAYLOAD + 1), 0);
	errno = 0;
	cr_assert_eq(imsg_compose_ibuf(&a.tx, 1, 0, 0, payload), -1);
	cr_assert_eq(errno, ERANGE);
	cr_assert_eq(imsgbuf_queuelen(&a.tx), 0);
	chan_close(&a);
	chan_close(&b);
}

Test(imsg, compose_over_max_fails_cleanly)
{
	struct chan	 c;
	struct iovec	 iov[2];
	unsigned char	*big;
	int		 p[2];

	chan_open(&c, 0);
	big = calloc(1, MAX_IMSGSIZE);
	cr_assert_not_null(big);
	cr_assert_eq(pipe(p), 0);

	errno = 0;
	cr_assert_eq(imsg_compose(&c.tx, 1, 0, 0, p[1], big,
	    MAX_PAYLOAD + 1), -1);
	cr_assert_eq(errno, ERANGE);
	cr_assert_eq(imsgbuf_queuelen(&c.tx), 0);
	/* As on OpenBSD, a failed compose leaves the descriptor ours. */
	cr_assert(fd_is_open(p[1]));

	iov[0].iov_base = big;
	iov[0].iov_len = MAX_PAYLOAD;
	iov[1].iov_base = big;
	iov[1].iov_len = 1;
	errno = 0;
	cr_assert_eq(imsg_composev(&c.tx, 1, 0, 0, -1, iov, 2), -1);
	cr_assert_eq(errno, ERANGE);
	errno = 0;
	cr_assert_null(imsg_create(&c.tx, 1, 0, 0, MAX_PAYLOAD + 1));
	cr_assert_eq(errno, ERANGE);
	errno = 0;
	cr_assert_eq(imsg_compose(&c.tx, 1, 0, 0, -1, big, SIZE_MAX), -1);
	cr_assert_eq(errno, ERANGE);
	cr_assert_eq(imsgbuf_queuelen(&c.tx), 0);

	/* Exactly the maximum still goes. */
	cr_assert_eq(imsg_compose(&c.tx, 1, 0, 0, -1, big, MAX_PAYLOAD), 1);
	cr_assert_eq(imsgbuf_queuelen(&c.tx), 1);

	close(p[0]);
	close(p[1]);
	free(big);
	chan_close(&c);
}

Test(imsg, set_maxsize_smaller)
{
	struct chan	 c;
	struct imsg	 imsg;
	unsigned char	 buf[256];

	chan_open(&c, 0);
	fill(buf, sizeof(buf), 3);
	cr_assert_eq(imsgbuf_set_maxsize(&c.tx, 128), 0);
	cr_assert_eq(c.tx.maxsize, 128);

	errno = 0;
	cr_assert_eq(imsg_compose(&c.tx, 1, 0, 0, -1, buf,
	    128 - IMSG_HEADER_SIZE + 1), -1);
	cr_assert_eq(errno, ERANGE);
	cr_assert_eq(imsgbuf_queuelen(&c.tx), 0);
	cr_assert_eq(imsg_compose(&c.tx, 1, 0, 0, -1, buf,
	    128 - IMSG_HEADER_SIZE), 1);
	cr_assert_eq(imsgbuf_flush(&c.tx), 0);
	cr_assert_eq(get_one(&c.rx, &imsg), 128);
	cr_assert(check(imsg.data, 128 - IMSG_HEADER_SIZE, 3));
	imsg_free(&imsg);

	/* The receiver enforces its own maximum on what arrives. */
	cr_assert_eq(imsgbuf_set_maxsize(&c.tx, MAX_IMSGSIZE), 0);
	cr_assert_eq(imsgbuf_set_maxsize(&c.rx, 64), 0);
	cr_assert_eq(imsg_compose(&c.tx, 2, 0, 0, -1, buf, 100), 1);
	cr_assert_eq(imsgbuf_flush(&c.tx), 0);
	wait_readable(c.rx.fd);
	errno = 0;
	cr_assert_eq(imsgbuf_read(&c.rx), -1);
	cr_assert_eq(errno, ERANGE);
	errno = 0;
	cr_assert_eq(imsg_get(&c.rx, &imsg), -1);
	cr_assert_eq(errno, ERANGE);
	chan_close(&c);
}

Test(imsg, set_maxsize_rejects_nonsense)
{
	struct imsgbuf	 ib;

	cr_assert_eq(imsgbuf_init(&ib, -1), 0);
	cr_assert_eq(ib.maxsize, MAX_IMSGSIZE);
	errno = 0;
	cr_assert_eq(imsgbuf_set_maxsize(&ib, 0), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(imsgbuf_set_maxsize(&ib, IMSG_HEADER_SIZE - 1), -1);
	cr_assert_eq(imsgbuf_set_maxsize(&ib, FD_MARK), -1);
	cr_assert_eq(imsgbuf_set_maxsize(&ib, UINT32_MAX), -1);
	cr_assert_eq(ib.maxsize, MAX_IMSGSIZE, "unchanged by failures");
	cr_assert_eq(imsgbuf_set_maxsize(&ib, IMSG_HEADER_SIZE), 0);
	cr_assert_eq(imsg_compose(&ib, 1, 0, 0, -1, NULL, 0), 1);
	cr_assert_eq(imsg_compose(&ib, 1, 0, 0, -1, "x", 1), -1);
	imsgbuf_clear(&ib);
	imsgbuf_clear(&ib);	/* harmless twice */
}

/* One message larger than the socket buffer: partial write and read. */
Test(imsg, single_message_partial_write_and_read)
{
	struct chan	 c;
	struct imsg	 imsg;
	unsigned char	*buf;
	int		 partial_reads = 0, rounds = 0;
	ssize_t		 n;

	buf = malloc(MAX_PAYLOAD);
	cr_assert_not_null(buf);
	fill(buf, MAX_PAYLOAD, 5);
	chan_open(&c, SOCK_NONBLOCK);
	shrink_buffers(c.sv[0]);
	shrink_buffers(c.sv[1]);

	cr_assert_eq(imsg_compose(&c.tx, 9, 1, 2, -1, buf, MAX_PAYLOAD), 1);
	cr_assert_eq(imsgbuf_write(&c.tx), 0);
	cr_assert_eq(imsgbuf_queuelen(&c.tx), 1, "write was not partial");
	cr_assert_eq(imsgbuf_write(&c.tx), 0, "EAGAIN is not an error");

	for (;;) {
		cr_assert(++rounds < 10000);
		if (imsgbuf_queuelen(&c.tx) > 0)
			cr_assert_eq(imsgbuf_write(&c.tx), 0);
		cr_assert_eq(imsgbuf_read(&c.rx), 1);
		if ((n = imsg_get(&c.rx, &imsg)) != 0)
			break;
		partial_reads++;
	}
	cr_assert_eq(n, MAX_IMSGSIZE);
	cr_assert_gt(partial_reads, 0);
	cr_assert(check(imsg.data, MAX_PAYLOAD, 5));
	imsg_free(&imsg);
	cr_assert_eq(imsgbuf_queuelen(&c.tx), 0);
	chan_close(&c);
	free(buf);
}

#define FLUSH_N		40

/*
 * The forked reader of the flush test.  No cr_assert here: it is not
 * the Criterion worker.  Any failure, EOF included, is an exit status.
 */
static int
reader_child(struct imsgbuf *rx)
{
	struct imsg	 imsg;
	struct pollfd	 pfd = { .fd = rx->fd, .events = POLLIN };
	ssize_t		 n;
	int		 i = 0, ok;

	while (i < FLUSH_N) {
		if ((n = imsg_get(rx, &imsg)) == -1)
			return 1;
		if (n == 0) {
			if (poll(&pfd, 1, WAIT_MS) != 1 ||
			    imsgbuf_read(rx) != 1)
				return 1;
			continue;
		}
		ok = n == MAX_IMSGSIZE &&
		    imsg_get_type(&imsg) == (uint32_t)i &&
		    check(imsg.data, MAX_PAYLOAD, (unsigned int)i);
		imsg_free(&imsg);
		if (!ok)
			return 1;
		i++;
	}
	return 0;
}

/* flush() on a full non-blocking socket waits for the reader. */
Test(imsg, flush_waits_on_full_nonblocking_socket)
{
	struct chan	 c;
	unsigned char	*buf;
	pid_t		 pid;
	int		 i, status;

	buf = malloc(MAX_PAYLOAD);
	cr_assert_not_null(buf);
	chan_open(&c, 0);
	shrink_buffers(c.sv[0]);
	cr_assert_eq(fcntl(c.sv[0], F_SETFL, O_NONBLOCK), 0);

	cr_assert_neq(pid = fork(), -1);
	if (pid == 0) {
		close(c.sv[0]);
		_exit(reader_child(&c.rx));
	}
	/* Only the child reads: if it dies, flush gets EPIPE, not a hang. */
	close(c.sv[1]);
	c.sv[1] = -1;
	for (i = 0; i < FLUSH_N; i++) {
		fill(buf, MAX_PAYLOAD, (unsigned int)i);
		cr_assert_eq(imsg_compose(&c.tx, (uint32_t)i, 0, 0, -1, buf,
		    MAX_PAYLOAD), 1);
	}
	cr_assert_eq(imsgbuf_flush(&c.tx), 0);
	cr_assert_eq(imsgbuf_queuelen(&c.tx), 0);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "reader saw lost or corrupt messages");
	chan_close(&c);
	free(buf);
}

#define STRESS_N	600
#define STRESS_FDEVERY	37

static size_t
stress_len(int i)
{
	if (i % 50 == 0)
		return MAX_PAYLOAD;
	if (i % 50 == 1)
		return 0;
	if (i % 7 == 0)
		return (size_t)(i % 13);
	return ((size_t)i * 7919) % (MAX_PAYLOAD + 1);
}

Test(imsg, many_messages_tiny_buffers)
{
	struct chan	 c;
	struct imsg	 imsg;
	struct pollfd	 pfd[2];
	struct stat	 st;
	unsigned char	*buf;
	ino_t		 ino[STRESS_N];
	int		 rpipe[STRESS_N];
	int		 p[2], sent = 0, got = 0, reads = 0, fds_got = 0;
	int		 base, rfd;
	ssize_t		 n;
	size_t		 len;

	base = count_fds();
	buf = malloc(MAX_PAYLOAD);
	cr_assert_not_null(buf);
	chan_open(&c, SOCK_NONBLOCK);
	shrink_buffers(c.sv[0]);
	shrink_buffers(c.sv[1]);
	imsgbuf_allow_fdpass(&c.tx);
	imsgbuf_allow_fdpass(&c.rx);

	while (got < STRESS_N) {
		/* Keep a handful queued so writes and reads interleave. */
		while (sent < STRESS_N && imsgbuf_queuelen(&c.tx) < 8) {
			len = stress_len(sent);
			fill(buf, len, (unsigned int)sent);
			rfd = -1;
			rpipe[sent] = -1;
			if (sent % STRESS_FDEVERY == 3) {
				cr_assert_eq(pipe(p), 0);
				cr_assert_eq(fstat(p[1], &st), 0);
				ino[sent] = st.st_ino;
				rpipe[sent] = p[0];
				rfd = p[1];
			}
			cr_assert_eq(imsg_compose(&c.tx, (uint32_t)sent,
			    (uint32_t)sent ^ 0xdead, 1000 + sent, rfd, buf,
			    len), 1);
			sent++;
		}

		pfd[0].fd = c.sv[0];
		pfd[0].events = imsgbuf_queuelen(&c.tx) > 0 ? POLLOUT : 0;
		pfd[1].fd = c.sv[1];
		pfd[1].events = POLLIN;
		cr_assert_gt(poll(pfd, 2, WAIT_MS), 0, "stalled at %d", got);
		if (pfd[0].revents & POLLOUT)
			cr_assert_eq(imsgbuf_write(&c.tx), 0);
		if (!(pfd[1].revents & POLLIN))
			continue;
		cr_assert_eq(imsgbuf_read(&c.rx), 1);
		reads++;
		while ((n = imsg_get(&c.rx, &imsg)) != 0) {
			cr_assert_gt(n, 0);
			len = stress_len(got);
			cr_assert_eq(imsg_get_type(&imsg), (uint32_t)got,
			    "reordered or lost: want %d got %u", got,
			    imsg_get_type(&imsg));
			cr_assert_eq(imsg_get_id(&imsg), (uint32_t)got ^ 0xdead);
			cr_assert_eq(imsg_get_pid(&imsg), 1000 + got);
			cr_assert_eq(imsg_get_len(&imsg), len);
			cr_assert_eq((size_t)n, len + IMSG_HEADER_SIZE);
			cr_assert(check(imsg.data, len, (unsigned int)got),
			    "payload %d corrupt", got);
			rfd = imsg_get_fd(&imsg);
			if (rpipe[got] == -1)
				cr_assert_eq(rfd, -1, "stray fd on %d", got);
			else {
				cr_assert_geq(rfd, 0, "fd lost on %d", got);
				cr_assert_eq(fstat(rfd, &st), 0);
				cr_assert_eq(st.st_ino, ino[got],
				    "fd of %d is not its own", got);
				close(rfd);
				cr_assert(pipe_writers_gone(rpipe[got]));
				close(rpipe[got]);
				fds_got++;
			}
			imsg_free(&imsg);
			got++;
		}
	}
	cr_assert_eq(fds_got, (STRESS_N + STRESS_FDEVERY - 4) /
	    STRESS_FDEVERY);
	cr_assert_gt(reads, 100, "buffers too large to fragment");
	cr_assert_eq(imsgbuf_queuelen(&c.tx), 0);
	chan_close(&c);
	free(buf);
	cr_assert_eq(count_fds(), base, "descriptor leak");
}

Test(imsg, fd_passing_works)
{
	struct chan	 c;
	struct imsg	 imsg;
	char		 got[8];
	int		 p[2], fd, base;

	base = count_fds();
	chan_open(&c, 0);
	imsgbuf_allow_fdpass(&c.tx);
	imsgbuf_allow_fdpass(&c.rx);
	cr_assert_eq(pipe(p), 0);

	cr_assert_eq(imsg_compose(&c.tx, 5, 0, 0, p[1], "w", 1), 1);
	cr_assert(fd_is_open(p[1]), "closed before it was sent");
	cr_assert_eq(imsgbuf_flush(&c.tx), 0);
	cr_assert(!fd_is_open(p[1]), "sender keeps a sent descriptor");

	cr_assert_eq(get_one(&c.rx, &imsg), (ssize_t)(IMSG_HEADER_SIZE + 1));
	cr_assert_eq(imsg.hdr.len, IMSG_HEADER_SIZE + 1, "fd mark leaked");
	fd = imsg_get_fd(&imsg);
	cr_assert_geq(fd, 0);
	cr_assert_eq(imsg_get_fd(&imsg), -1, "fd handed out twice");
	cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	imsg_free(&imsg);
	cr_assert(fd_is_open(fd), "imsg_free closed a claimed fd");

	cr_assert_eq(write(fd, "hello", 5), 5);
	close(fd);
	wait_readable(p[0]);
	cr_assert_eq(read(p[0], got, sizeof(got)), 5);
	cr_assert_arr_eq(got, "hello", 5);
	cr_assert(pipe_writers_gone(p[0]));
	close(p[0]);
	chan_close(&c);
	cr_assert_eq(count_fds(), base);
}

Test(imsg, fd_refused_without_allow_fdpass)
{
	struct chan	 c;
	struct imsg	 imsg;
	char		 got;
	int		 p[2], base;

	base = count_fds();
	chan_open(&c, 0);
	imsgbuf_allow_fdpass(&c.tx);	/* only the sender */
	cr_assert_eq(pipe(p), 0);

	cr_assert_eq(imsg_compose(&c.tx, 5, 0, 0, p[1], "z", 1), 1);
	cr_assert_eq(imsgbuf_flush(&c.tx), 0);
	cr_assert_eq(get_one(&c.rx, &imsg), (ssize_t)(IMSG_HEADER_SIZE + 1));
	cr_assert_eq(imsg_get_fd(&imsg), -1);
	cr_assert_eq(imsg_get_data(&imsg, &got, 1), 0);
	cr_assert_eq(got, 'z');
	imsg_free(&imsg);

	cr_assert(pipe_writers_gone(p[0]), "refused descriptor still open");
	close(p[0]);
	chan_close(&c);
	cr_assert_eq(count_fds(), base, "descriptor leak");
}

Test(imsg, fd_not_sent_by_sender_without_fdpass)
{
	struct chan	 c;
	struct imsg	 imsg;
	int		 p[2], base;

	base = count_fds();
	chan_open(&c, 0);
	imsgbuf_allow_fdpass(&c.rx);
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(imsg_compose(&c.tx, 5, 0, 0, p[1], NULL, 0), 1);
	cr_assert_eq(imsgbuf_flush(&c.tx), 0);
	cr_assert(!fd_is_open(p[1]));
	cr_assert_eq(get_one(&c.rx, &imsg), (ssize_t)IMSG_HEADER_SIZE);
	cr_assert_eq(imsg_get_fd(&imsg), -1);
	imsg_free(&imsg);
	cr_assert(pipe_writers_gone(p[0]));
	close(p[0]);
	chan_close(&c);
	cr_assert_eq(count_fds(), base);
}

#define RAW_MAXFDS	32

/* Send raw bytes with the given descriptors in one SCM_RIGHTS. */
static void
raw_send(int sock, const void *data, size_t len, const int *fds, int nfds)
{
	union {
		struct cmsghdr	hdr;
		unsigned char	buf[CMSG_SPACE(sizeof(int) * RAW_MAXFDS)];
	} cmsgbuf;
	struct msghdr	 msg;
	struct cmsghdr	*cmsg;
	struct iovec	 iov;

	cr_assert_leq(nfds, RAW_MAXFDS);
	memset(&msg, 0, sizeof(msg));
	memset(&cmsgbuf, 0, sizeof(cmsgbuf));
	iov.iov_base = (void *)(uintptr_t)data;
	iov.iov_len = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (nfds > 0) {
		msg.msg_control = cmsgbuf.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
	}
	cr_assert_eq(sendmsg(sock, &msg, 0), (ssize_t)len);
}

static void
raw_hdr(struct imsg_hdr *h, uint32_t type, uint32_t len)
{
	h->type = type;
	h->len = len;
	h->peerid = 0;
	h->pid = 0;
}

Test(imsg, extra_fds_in_one_cmsg_are_closed)
{
	struct chan	 c;
	struct imsg	 imsg;
	struct imsg_hdr	 h;
	int		 p[3][2], wr[3], i, fd, base;

	base = count_fds();
	chan_open(&c, 0);
	imsgbuf_allow_fdpass(&c.rx);
	for (i = 0; i < 3; i++) {
		cr_assert_eq(pipe(p[i]), 0);
		wr[i] = p[i][1];
	}
	raw_hdr(&h, 1, IMSG_HEADER_SIZE | FD_MARK);
	raw_send(c.sv[0], &h, sizeof(h), wr, 3);
	for (i = 0; i < 3; i++)
		close(p[i][1]);

	cr_assert_eq(get_one(&c.rx, &imsg), (ssize_t)IMSG_HEADER_SIZE);
	fd = imsg_get_fd(&imsg);
	cr_assert_geq(fd, 0);
	imsg_free(&imsg);
	cr_assert_eq(write(fd, "1", 1), 1, "the first one is kept");
	close(fd);
	cr_assert_eq(read_byte(p[0][0]), '1', "not the first one kept");
	for (i = 0; i < 3; i++) {
		cr_assert(pipe_writers_gone(p[i][0]), "fd %d leaked", i);
		close(p[i][0]);
	}
	chan_close(&c);
	cr_assert_eq(count_fds(), base);
}

/*
 * More descriptors than the receiver has room for: the kernel drops the
 * rest and flags MSG_CTRUNC.  None of those that did arrive is trusted.
 */
Test(imsg, truncated_control_message_closes_all)
{
	struct chan	 c;
	struct imsg	 imsg;
	struct imsg_hdr	 h;
	int		 p[RAW_MAXFDS][2], wr[RAW_MAXFDS], i, base;

	base = count_fds();
	chan_open(&c, 0);
	imsgbuf_allow_fdpass(&c.rx);
	for (i = 0; i < RAW_MAXFDS; i++) {
		cr_assert_eq(pipe(p[i]), 0);
		wr[i] = p[i][1];
	}
	raw_hdr(&h, 1, (IMSG_HEADER_SIZE + 2) | FD_MARK);
	raw_send(c.sv[0], &h, sizeof(h), wr, RAW_MAXFDS);
	raw_send(c.sv[0], "ok", 2, NULL, 0);
	for (i = 0; i < RAW_MAXFDS; i++)
		close(p[i][1]);

	cr_assert_eq(get_one(&c.rx, &imsg), (ssize_t)(IMSG_HEADER_SIZE + 2));
	cr_assert_arr_eq(imsg.data, "ok", 2, "stream intact after it");
	cr_assert_eq(imsg_get_fd(&imsg), -1);
	imsg_free(&imsg);
	for (i = 0; i < RAW_MAXFDS; i++) {
		cr_assert(pipe_writers_gone(p[i][0]), "fd %d leaked", i);
		close(p[i][0]);
	}
	chan_close(&c);
	cr_assert_eq(count_fds(), base);
}

Test(imsg, fd_with_unmarked_message_is_closed)
{
	struct chan	 c;
	struct imsg	 imsg;
	struct imsg_hdr	 h;
	int		 p[2], base;

	base = count_fds();
	chan_open(&c, 0);
	imsgbuf_allow_fdpass(&c.rx);
	cr_assert_eq(pipe(p), 0);
	raw_hdr(&h, 1, IMSG_HEADER_SIZE);
	raw_send(c.sv[0], &h, sizeof(h), &p[1], 1);
	close(p[1]);
	cr_assert_eq(get_one(&c.rx, &imsg), (ssize_t)IMSG_HEADER_SIZE);
	cr_assert_eq(imsg_get_fd(&imsg), -1);
	imsg_free(&imsg);
	cr_assert(pipe_writers_gone(p[0]));
	close(p[0]);
	chan_close(&c);
	cr_assert_eq(count_fds(), base);
}

/* The descriptor arrives with a header that is only complete later. */
static void
split_header(int marked)
{
	struct chan	 c;
	struct imsg	 imsg;
	struct imsg_hdr	 h;
	unsigned char	 raw[sizeof(h) + 3];
	int		 p[2], fd, base;

	base = count_fds();
	chan_open(&c, 0);
	imsgbuf_allow_fdpass(&c.rx);
	cr_assert_eq(pipe(p), 0);
	raw_hdr(&h, 3, (sizeof(raw)) | (marked ? FD_MARK : 0));
	memcpy(raw, &h, sizeof(h));
	memcpy(raw + sizeof(h), "abc", 3);

	raw_send(c.sv[0], raw, 5, &p[1], 1);
	close(p[1]);
	wait_readable(c.sv[1]);
	cr_assert_eq(imsgbuf_read(&c.rx), 1);
	cr_assert_eq(imsg_get(&c.rx, &imsg), 0);
	raw_send(c.sv[0], raw + 5, 8, NULL, 0);
	wait_readable(c.sv[1]);
	cr_assert_eq(imsgbuf_read(&c.rx), 1);
	cr_assert_eq(imsg_get(&c.rx, &imsg), 0);
	raw_send(c.sv[0], raw + 13, sizeof(raw) - 13, NULL, 0);

	cr_assert_eq(get_one(&c.rx, &imsg), (ssize_t)sizeof(raw));
	cr_assert_arr_eq(imsg.data, "abc", 3);
	fd = imsg_get_fd(&imsg);
	imsg_free(&imsg);
	if (marked) {
		cr_assert_geq(fd, 0);
		cr_assert_eq(write(fd, "!", 1), 1);
		close(fd);
		cr_assert_eq(read_byte(p[0]), '!');
	} else
		cr_assert_eq(fd, -1);
	cr_assert(pipe_writers_gone(p[0]));
	close(p[0]);
	chan_close(&c);
	cr_assert_eq(count_fds(), base);
}

Test(imsg, fd_with_split_header_marked)
{
	split_header(1);
}

Test(imsg, fd_with_split_header_unmarked)
{
	split_header(0);
}

static void
bad_header(uint32_t len, int valid_first)
{
	struct chan	 c;
	struct imsg	 imsg;
	struct imsg_hdr	 h[2];
	size_t		 n = 0;

	chan_open(&c, 0);
	if (valid_first)
		raw_hdr(&h[n++], 1, IMSG_HEADER_SIZE);
	raw_hdr(&h[n++], 2, len);
	raw_send(c.sv[0], h, n * sizeof(h[0]), NULL, 0);
	wait_readable(c.sv[1]);
	errno = 0;
	cr_assert_eq(imsgbuf_read(&c.rx), -1);
	cr_assert_eq(errno, ERANGE);
	if (valid_first) {
		cr_assert_eq(imsg_get(&c.rx, &imsg), (ssize_t)IMSG_HEADER_SIZE);
		cr_assert_eq(imsg_get_type(&imsg), 1);
		imsg_free(&imsg);
	}
	errno = 0;
	cr_assert_eq(imsg_get(&c.rx, &imsg), -1);
	cr_assert_eq(errno, ERANGE);
	/* Sticky: the stream cannot be trusted any more. */
	cr_assert_eq(imsgbuf_read(&c.rx), -1);
	cr_assert_eq(imsg_get(&c.rx, &imsg), -1);
	chan_close(&c);
}

Test(imsg, header_len_zero)
{
	bad_header(0, 0);
}

Test(imsg, header_len_below_header_size)
{
	bad_header(IMSG_HEADER_SIZE - 1, 0);
}

Test(imsg, header_len_above_max)
{
	bad_header(MAX_IMSGSIZE + 1, 0);
}

Test(imsg, header_len_huge)
{
	bad_header(UINT32_MAX, 0);
	bad_header(FD_MARK - 1, 0);
	bad_header(FD_MARK | 3, 0);
}

Test(imsg, header_bad_after_good_message)
{
	bad_header(5, 1);
}

Test(imsg, header_len_exactly_max_accepted)
{
	struct chan	 c;
	struct imsg	 imsg;
	struct imsg_hdr	 h;
	unsigned char	*raw;

	raw = calloc(1, MAX_IMSGSIZE);
	cr_assert_not_null(raw);
	chan_open(&c, 0);
	raw_hdr(&h, 6, MAX_IMSGSIZE);
	memcpy(raw, &h, sizeof(h));
	raw_send(c.sv[0], raw, MAX_IMSGSIZE, NULL, 0);
	cr_assert_eq(get_one(&c.rx, &imsg), MAX_IMSGSIZE);
	cr_assert_eq(imsg_get_len(&imsg), MAX_PAYLOAD);
	imsg_free(&imsg);
	chan_close(&c);
	free(raw);
}

Test(imsg, get_data_demands_exact_length)
{
	struct chan	 c;
	struct imsg	 imsg;
	uint32_t	 v = 0x11223344, small;
	uint64_t	 big;

	chan_open(&c, 0);
	cr_assert_eq(imsg_compose(&c.tx, 1, 0, 0, -1, &v, sizeof(v)), 1);
	cr_assert_eq(imsgbuf_flush(&c.tx), 0);
	cr_assert_eq(get_one(&c.rx, &imsg), (ssize_t)(IMSG_HEADER_SIZE + 4));

	errno = 0;
	cr_assert_eq(imsg_get_data(&imsg, &big, sizeof(big)), -1);
	cr_assert_eq(errno, EBADMSG);
	errno = 0;
	cr_assert_eq(imsg_get_data(&imsg, &small, 2), -1);
	cr_assert_eq(errno, EBADMSG);
	errno = 0;
	cr_assert_eq(imsg_get_data(&imsg, &small, 0), -1);
	cr_assert_eq(errno, EINVAL);
	/* Failed calls consume nothing. */
	cr_assert_eq(imsg_get_len(&imsg), 4);
	cr_assert_eq(imsg_get_data(&imsg, &small, sizeof(small)), 0);
	cr_assert_eq(small, v);
	imsg_free(&imsg);
	chan_close(&c);
}

Test(imsg, get_ibuf_reads_payload)
{
	struct chan	 c;
	struct imsg	 imsg;
	struct ibuf	 ib, *w;
	uint16_t	 s;
	uint32_t	 l;
	uint8_t		 b;
	char		*str;

	chan_open(&c, 0);
	cr_assert_not_null(w = imsg_create(&c.tx, 1, 0, 0, 0));
	cr_assert_eq(ibuf_add_n16(w, 0xabcd), 0);
	cr_assert_eq(ibuf_add_n32(w, 0xdeadbeef), 0);
	cr_assert_eq(ibuf_add_n8(w, 7), 0);
	cr_assert_eq(ibuf_add(w, "skipme", 6), 0);
	cr_assert_eq(ibuf_add(w, "str", 3), 0);
	imsg_close(&c.tx, w);
	cr_assert_eq(imsg_compose(&c.tx, 2, 0, 0, -1, NULL, 0), 1);
	cr_assert_eq(imsgbuf_flush(&c.tx), 0);

	cr_assert_eq(get_one(&c.rx, &imsg), (ssize_t)(IMSG_HEADER_SIZE + 16));
	cr_assert_eq(imsg_get_ibuf(&imsg, &ib), 0);
	cr_assert_eq(ibuf_size(&ib), 16);
	cr_assert_eq(memcmp(ibuf_data(&ib), "\xab\xcd", 2), 0);
	cr_assert_eq(ibuf_get_n16(&ib, &s), 0);
	cr_assert_eq(s, 0xabcd);
	cr_assert_eq(ibuf_get_n32(&ib, &l), 0);
	cr_assert_eq(l, 0xdeadbeef);
	cr_assert_eq(ibuf_get_n8(&ib, &b), 0);
	cr_assert_eq(b, 7);
	cr_assert_eq(ibuf_skip(&ib, 6), 0);
	cr_assert_eq(ibuf_size(&ib), 3);
	errno = 0;
	cr_assert_eq(ibuf_skip(&ib, 4), -1);
	cr_assert_eq(errno, EBADMSG);
	cr_assert_eq(ibuf_get_n32(&ib, &l), -1, "read past the payload");
	cr_assert_not_null(str = ibuf_get_string(&ib, 3));
	cr_assert_str_eq(str, "str");
	free(str);
	cr_assert_eq(ibuf_size(&ib), 0);
	ibuf_free(&ib);		/* a borrowed buffer: must be a no-op */
	imsg_free(&imsg);

	cr_assert_eq(get_one(&c.rx, &imsg), (ssize_t)IMSG_HEADER_SIZE);
	errno = 0;
	cr_assert_eq(imsg_get_ibuf(&imsg, &ib), -1);
	cr_assert_eq(errno, EBADMSG);
	imsg_free(&imsg);
	chan_close(&c);
}

Test(imsg, imsg_free_closes_unclaimed_fd)
{
	struct chan	 c;
	struct imsg	 imsg;
	int		 p[2], base;

	base = count_fds();
	chan_open(&c, 0);
	imsgbuf_allow_fdpass(&c.tx);
	imsgbuf_allow_fdpass(&c.rx);
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(imsg_compose(&c.tx, 1, 0, 0, p[1], NULL, 0), 1);
	cr_assert_eq(imsgbuf_flush(&c.tx), 0);
	cr_assert_eq(get_one(&c.rx, &imsg), (ssize_t)IMSG_HEADER_SIZE);
	cr_assert(!pipe_writers_gone(p[0]), "fd did not arrive");
	imsg_free(&imsg);
	cr_assert(pipe_writers_gone(p[0]));
	close(p[0]);
	chan_close(&c);
	cr_assert_eq(count_fds(), base);
}

Test(imsg, clear_closes_pending_fds)
{
	struct chan	 c;
	int		 p[2], q[2], base;

	base = count_fds();
	chan_open(&c, 0);
	imsgbuf_allow_fdpass(&c.tx);
	imsgbuf_allow_fdpass(&c.rx);
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(pipe(q), 0);

	/* q: received but never fetched; p: queued but never sent. */
	cr_assert_eq(imsg_compose(&c.tx, 1, 0, 0, q[1], NULL, 0), 1);
	cr_assert_eq(imsgbuf_flush(&c.tx), 0);
	wait_readable(c.sv[1]);
	cr_assert_eq(imsgbuf_read(&c.rx), 1);
	cr_assert_eq(imsg_compose(&c.tx, 1, 0, 0, p[1], NULL, 0), 1);
	cr_assert_eq(imsgbuf_queuelen(&c.tx), 1);

	chan_close(&c);
	cr_assert(pipe_writers_gone(p[0]));
	cr_assert(pipe_writers_gone(q[0]));
	close(p[0]);
	close(q[0]);
	cr_assert_eq(count_fds(), base);
}

Test(imsg, read_eof_and_eagain)
{
	struct chan	 c;
	struct imsg	 imsg;

	chan_open(&c, SOCK_NONBLOCK);
	cr_assert_eq(imsgbuf_read(&c.rx), 1, "EAGAIN is not an error");
	cr_assert_eq(imsg_get(&c.rx, &imsg), 0);
	cr_assert_eq(imsgbuf_write(&c.tx), 0, "nothing queued");
	cr_assert_eq(imsgbuf_flush(&c.tx), 0);
	close(c.sv[0]);
	c.sv[0] = -1;
	cr_assert_eq(imsgbuf_read(&c.rx), 0);
	chan_close(&c);
}

Test(imsg, write_to_closed_peer_is_epipe)
{
	struct chan	 c;

	chan_open(&c, 0);
	signal(SIGPIPE, SIG_DFL);
	close(c.sv[1]);
	c.sv[1] = -1;
	cr_assert_eq(imsg_compose(&c.tx, 1, 0, 0, -1, "x", 1), 1);
	errno = 0;
	cr_assert_eq(imsgbuf_write(&c.tx), -1);
	cr_assert_eq(errno, EPIPE);
	cr_assert_eq(imsgbuf_flush(&c.tx), -1);
	chan_close(&c);
}

Test(ibuf, dynamic_growth_and_limits)
{
	struct ibuf	*b;
	unsigned char	 chunk[100];
	int		 i;

	memset(chunk, 0x5a, sizeof(chunk));
	cr_assert_not_null(b = ibuf_dynamic(8, 1000));
	for (i = 0; i < 10; i++)
		cr_assert_eq(ibuf_add(b, chunk, sizeof(chunk)), 0);
	cr_assert_eq(ibuf_size(b), 1000);
	cr_assert_eq(ibuf_left(b), 0);
	errno = 0;
	cr_assert_eq(ibuf_add(b, chunk, 1), -1);
	cr_assert_eq(errno, ERANGE);
	cr_assert_eq(ibuf_truncate(b, 10), 0);
	cr_assert_eq(ibuf_size(b), 10);
	cr_assert_eq(ibuf_truncate(b, 20), 0);
	cr_assert_eq(((unsigned char *)ibuf_data(b))[15], 0, "not zeroed");
	ibuf_free(b);

	cr_assert_not_null(b = ibuf_open(4));
	cr_assert_eq(ibuf_add(b, "abcd", 4), 0);
	cr_assert_eq(ibuf_add(b, "e", 1), -1, "fixed buffers do not grow");
	ibuf_free(b);

	errno = 0;
	cr_assert_null(ibuf_open(0));
	cr_assert_eq(errno, EINVAL);
	cr_assert_null(ibuf_dynamic(10, 5));
	ibuf_free(NULL);
}

Test(ibuf, set_seek_and_byte_order)
{
	struct ibuf	*b;
	uint32_t	 h;
	uint64_t	 q;

	cr_assert_not_null(b = ibuf_dynamic(0, 64));
	cr_assert_eq(ibuf_add_zero(b, 8), 0);
	cr_assert_eq(ibuf_set_n16(b, 0, 0x0102), 0);
	cr_assert_eq(ibuf_set_h32(b, 4, 0xa0b0c0d0), 0);
	cr_assert_eq(memcmp(ibuf_data(b), "\x01\x02\x00\x00", 4), 0);
	errno = 0;
	cr_assert_eq(ibuf_set_n16(b, 0, 0x10000), -1);
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_eq(ibuf_set_n32(b, 6, 1), -1, "set past the end");
	cr_assert_eq(errno, ERANGE);
	cr_assert_null(ibuf_seek(b, 9, 0));
	cr_assert_null(ibuf_seek(b, 4, SIZE_MAX));
	cr_assert_not_null(ibuf_seek(b, 8, 0));
	cr_assert_eq(ibuf_add_n8(b, 256), -1);
	cr_assert_eq(ibuf_add_n64(b, 0x0102030405060708ULL), 0);
	cr_assert_eq(ibuf_skip(b, 4), 0);
	cr_assert_eq(ibuf_get_h32(b, &h), 0);
	cr_assert_eq(h, 0xa0b0c0d0);
	cr_assert_eq(ibuf_get_n64(b, &q), 0);
	cr_assert_eq(q, 0x0102030405060708ULL);
	ibuf_rewind(b);
	cr_assert_eq(ibuf_size(b), 16);
	ibuf_free(b);
}
