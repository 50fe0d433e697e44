/*
 * tlsrate.c -- full TLS handshakes per second on all cores, client and
 * server in memory (a BIO pair, no sockets), with the server's own
 * certificate and key: the ceiling for TLS sessions per second when the
 * load generator shares the machine, as it does in make bench.  No
 * session resumption: every handshake is a full one.
 *
 * usage: tlsrate CERT KEY SECONDS [THREADS]
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static SSL_CTX		*sctx, *cctx;
static atomic_long	 done;
static atomic_int	 stop;

/* One full handshake; 0 on success. */
static int
handshake(void)
{
	SSL	*c, *s;
	BIO	*cb, *sb;
	int	 cdone = 0, sdone = 0, r, i;

	if ((c = SSL_new(cctx)) == NULL || (s = SSL_new(sctx)) == NULL)
		return -1;
	if (!BIO_new_bio_pair(&cb, 0, &sb, 0))
		return -1;
	SSL_set_bio(c, cb, cb);
	SSL_set_bio(s, sb, sb);
	SSL_set_connect_state(c);
	SSL_set_accept_state(s);
	for (i = 0; i < 100 && !(cdone && sdone); i++) {
		if (!cdone) {
			if ((r = SSL_do_handshake(c)) == 1)
				cdone = 1;
			else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ)
				break;
		}
		if (!sdone) {
			if ((r = SSL_do_handshake(s)) == 1)
				sdone = 1;
			else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
				break;
		}
	}
	SSL_free(c);
	SSL_free(s);
	return cdone && sdone ? 0 : -1;
}

static void *
spin(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		if (handshake() == -1) {
			ERR_print_errors_fp(stderr);
			fprintf(stderr, "tlsrate: handshake failed\n");
			exit(1);
		}
		atomic_fetch_add(&done, 1);
	}
	return NULL;
}

int
main(int argc, char *argv[])
{
	pthread_t	 t[64];
	struct timespec	 t0, t1;
	double		 secs;
	int		 threads, seconds;

	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: tlsrate cert key seconds [threads]\n");
		return 2;
	}
	seconds = atoi(argv[3]);
	threads = argc == 5 ? atoi(argv[4]) :
	    (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (threads < 1 || threads > 64 || seconds < 1)
		return 2;
	sctx = SSL_CTX_new(TLS_server_method());
	cctx = SSL_CTX_new(TLS_client_method());
	if (sctx == NULL || cctx == NULL ||
	    SSL_CTX_use_certificate_chain_file(sctx, argv[1]) != 1 ||
	    SSL_CTX_use_PrivateKey_file(sctx, argv[2], SSL_FILETYPE_PEM) != 1) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	/* Full handshakes only, as each session of the bench makes. */
	SSL_CTX_set_options(sctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(sctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
	if (handshake() == -1) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, spin, NULL);
	sleep((unsigned int)seconds);
	atomic_store(&stop, 1);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("%.1f\n", (double)atomic_load(&done) / secs);
	return 0;
}
