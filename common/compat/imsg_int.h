/*
 * imsg_int.h -- what imsg.c and imsg_buffer.c share and nobody else
 * sees: the state of one channel (struct msgbuf, opaque in imsg.h) and
 * the write queue's calls.  Not used on OpenBSD, whose libutil has its
 * own.
 */
#ifndef PORTCULLIS_IMSG_INT_H
#define PORTCULLIS_IMSG_INT_H

#include <sys/queue.h>

#include <stddef.h>
#include <stdint.h>

#include "imsg.h"

/* The write queue (imsg_buffer.c) and the read state (imsg.c). */
struct msgbuf {
	TAILQ_HEAD(, ibuf)	 bufs;		/* to send, in order */
	uint32_t		 queued;
	TAILQ_HEAD(, ibuf)	 rbufs;		/* received whole, in order */
	struct ibuf		*rmsg;		/* being received, header in */
	unsigned char		 rhdr[sizeof(struct imsg_hdr)];
	size_t			 rhdrlen;	/* bytes of rhdr received */
	int			 rhdrfd;	/* came with rhdr's first byte */
	int			 rerrno;	/* stream corrupt: sticky */
	unsigned char		 rbuf[IBUF_READ_SIZE];
};

struct msgbuf	*msgbuf_new(void);
void		 msgbuf_free(struct msgbuf *);
/*
 * One sendmsg of as much as is queued, the first message's descriptor
 * with it if fdpass.  1 after progress or when nothing is queued, 0
 * when the socket cannot take more now, -1 on error.
 */
int		 msgbuf_write(int fd, struct msgbuf *, int fdpass);

#endif /* PORTCULLIS_IMSG_INT_H */
