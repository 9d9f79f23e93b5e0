/*
 * fuzz.h — what the libFuzzer harnesses (tests/fuzz/fuzz_*.c) share: FUZZ_CHECK, which turns a
 * broken invariant into a crash libFuzzer records (the input is saved as a crash artifact and
 * the run fails), and the libFuzzer entry points' prototypes, which -Wstrict-prototypes and
 * -Wmissing-prototypes builds want declared.
 * A harness is a program's main in all but name, so abort() is allowed here (STYLE rule 3).
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond, ...) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: invariant broken: %s: ", __FILE__, __LINE__, #cond); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
		abort(); \
	} \
} while (0)

/* 1 when the bounded char array s holds a NUL (a message that was written in full). */
#define FUZZ_TERMINATED(s) (memchr((s), '\0', sizeof(s)) != NULL)

#endif
