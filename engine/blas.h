/*
 * blas.h — make OpenBLAS use the kernels this CPU can run. Debian's OpenBLAS 0.3.21 picks its
 * kernels by CPU model when the library loads; on CPUs it does not know (new AMD EPYCs, most VMs)
 * it falls back to Haswell (AVX2) or even Prescott (SSE3) kernels although the CPU has AVX-512,
 * and sgemm runs at 60% (or 15%) of what it could. OPENBLAS_CORETYPE overrides the choice but is
 * read only at load time, so blas_setup() re-executes the program once with it set.
 * Call blas_setup() first thing in main(), before any thread starts. Not thread-safe.
 */
#ifndef BLAS_H
#define BLAS_H

#include <stddef.h>

/*
 * If the CPU has AVX-512 (F, CD, BW, DQ, VL) and OpenBLAS runs an older kernel set (its own
 * choice, or an inherited OPENBLAS_CORETYPE such as this lab's Haswell), re-executes argv with
 * OPENBLAS_CORETYPE=SkylakeX (does not return on success; on failure carries on with the kernels
 * it has). NORMLAB_BLAS=keep leaves OpenBLAS's choice alone. Then makes BLAS single-threaded: each
 * run's own pool splits the work, so concurrent runs never oversubscribe the cores.
 */
void blas_setup(int argc, char **argv);

/* One line for logs and the README: "OpenBLAS 0.3.21 core=SkylakeX (set by normlab: ...)". */
void blas_describe(char *buf, size_t cap);

#endif
