/*
 * fuzz.h -- what every fuzz target defines, for libFuzzer and for
 * driver.c, the replay main() that make check builds with the usual
 * compiler and runs over the seed corpus and the crash reproducers.
 *
 * A target checks properties of what it calls with FUZZ_ASSERT: a
 * failed one aborts, which libFuzzer and the driver report as a crash.
 */
#ifndef PORTCULLIS_FUZZ_H
#define PORTCULLIS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int	LLVMFuzzerInitialize(int *argc, char ***argv);
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(e) do {						\
	if (!(e)) {							\
		fprintf(stderr, "%s:%d: property failed: %s\n",		\
		    __FILE__, __LINE__, #e);				\
		abort();						\
	}								\
} while (0)

#endif /* PORTCULLIS_FUZZ_H */
