/*
 * hashrate.c -- the raw verification rate of one password hash on all
 * cores: the ceiling for authentications per second through the whole
 * server.  make bench prints it beside the measured AUTH rate.
 *
 * usage: hashrate HASH PASSWORD SECONDS [THREADS]
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "passwd.h"

static const char	*hash, *password;
static atomic_long	 done;
static atomic_int	 stop;

static void *
spin(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		if (passwd_verify(hash, password, strlen(password)) != 1) {
			fprintf(stderr, "hashrate: the password does not "
			    "match the hash\n");
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
	long		 n;
	int		 threads, seconds;

	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: hashrate hash password seconds "
		    "[threads]\n");
		return 2;
	}
	hash = argv[1];
	password = argv[2];
	seconds = atoi(argv[3]);
	threads = argc == 5 ? atoi(argv[4]) :
	    (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (threads < 1 || threads > 64 || seconds < 1)
		return 2;
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
	n = atomic_load(&done);
	printf("%.1f\n", (double)n / secs);
	return 0;
}
