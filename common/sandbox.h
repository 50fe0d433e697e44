/*
 * sandbox.h -- what each process may still do once it is set up:
 * seccomp-bpf on Linux, pledge(2) and unveil(2) on OpenBSD, no core
 * dumps anywhere, and the descriptor limit the workers need.
 */
#ifndef PORTCULLIS_SANDBOX_H
#define PORTCULLIS_SANDBOX_H

#include <sys/types.h>
#include <sys/resource.h>

enum sandbox_role {
	SANDBOX_MASTER,
	SANDBOX_AUTHD,
	SANDBOX_WORKER,
	SANDBOX_METRICS,
	SANDBOX_KEYS,
};

/* What a worker delivers with, so that it keeps only what that needs. */
#define SANDBOX_SPOOL	0x01	/* files below the spool descriptors */
#define SANDBOX_RELAY	0x02	/* TCP connections to the next hop */

void	sandbox_nocore(void);
void	sandbox_unveil(const char *path, const char *permissions);
void	sandbox_enter(enum sandbox_role, unsigned int flags);
rlim_t	sandbox_nofile_need(int max_sessions);
rlim_t	sandbox_nofile_raise(rlim_t need);

#endif /* PORTCULLIS_SANDBOX_H */
