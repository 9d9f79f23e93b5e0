/*
 * blas.c — CPU feature detection and the OPENBLAS_CORETYPE re-exec (see blas.h).
 */
#define _GNU_SOURCE   /* setenv is POSIX; execv's environment comes along */
#include "blas.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REEXEC_MARK "NORMLAB_BLAS_REEXEC"

static int cpu_has_avx512(void)
{
#if defined(__x86_64__)
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
	       __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
	       __builtin_cpu_supports("avx512vl");
#else
	return 0;
#endif
}

static int core_uses_avx512(const char *core)
{
	static const char *const avx512[] = { "SkylakeX", "Cooperlake", "SapphireRapids" };
	for (size_t i = 0; i < sizeof avx512 / sizeof avx512[0]; i++)
		if (strcasecmp(core, avx512[i]) == 0)
			return 1;
	return 0;
}

void blas_setup(int argc, char **argv)
{
	(void)argc;
	const char *core = openblas_get_corename();
	const char *policy = getenv("NORMLAB_BLAS");
	int keep = policy && strcmp(policy, "keep") == 0;
	if (!keep && !getenv(REEXEC_MARK) && cpu_has_avx512() && core && !core_uses_avx512(core)) {
		/* remember what was chosen before, and why, for blas_describe */
		const char *env = getenv("OPENBLAS_CORETYPE");
		char was[96];
		snprintf(was, sizeof was, "%s%s%s", core, env ? " via OPENBLAS_CORETYPE=" : "",
			 env ? env : "");
		setenv(REEXEC_MARK, was, 1);
		setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
		execv("/proc/self/exe", argv);
		/* exec failed: keep going with the kernels we have */
		unsetenv(REEXEC_MARK);
	}
	openblas_set_num_threads(1);
}

void blas_describe(char *buf, size_t cap)
{
	const char *was = getenv(REEXEC_MARK), *env = getenv("OPENBLAS_CORETYPE");
	char *cfg = openblas_get_config();
	if (was && env)
		snprintf(buf, cap, "%s; core=%s (set by normlab: the CPU has AVX-512 but OpenBLAS had "
			 "%s; NORMLAB_BLAS=keep disables this)", cfg ? cfg : "OpenBLAS",
			 openblas_get_corename(), was);
	else if (env)
		snprintf(buf, cap, "%s; core=%s (OPENBLAS_CORETYPE=%s from the environment)",
			 cfg ? cfg : "OpenBLAS", openblas_get_corename(), env);
	else
		snprintf(buf, cap, "%s; core=%s (OpenBLAS's own choice)", cfg ? cfg : "OpenBLAS",
			 openblas_get_corename());
}
