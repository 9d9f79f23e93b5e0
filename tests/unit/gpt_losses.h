/*
 * gpt_losses.h — the loss after 50 steps of test_arch's fixture spec for every norm type ×
 * placement on 1 and 2 threads, as the bits of the double the trainer reports. Recorded before
 * the model core replaced model_gpt.c (NORMLAB_RECORD=1 build/tests/test_arch); never edit by
 * hand: a change here is a change in what gpt computes. The dyt and derf rows were recorded again
 * on the same pre-core engine after the DyT/Derf backward fixes (sech², the forward's erf, α and
 * shift sums in double), which change those runs on purpose; the model core left every row as is.
 * The batchnorm, powernorm and un rows were recorded when those kinds were added (the other rows
 * were unchanged by that change, bit for bit).
 */
static const struct { int threads; const char *norm, *placement; uint64_t bits; } gpt_losses[] = {
	{ 1, "layernorm", "pre", 0x4007556cb7400000ULL },  /* 2.91671127 */
	{ 1, "layernorm", "post", 0x400761ae74c00000ULL },  /* 2.92269603 */
	{ 1, "layernorm", "peri", 0x400783468a800000ULL },  /* 2.93909939 */
	{ 1, "layernorm", "mix", 0x4007616120c00000ULL },  /* 2.92254854 */
	{ 1, "layernorm", "lns", 0x40075be0dd800000ULL },  /* 2.91986249 */
	{ 1, "rmsnorm", "pre", 0x400793a831000000ULL },  /* 2.94709814 */
	{ 1, "rmsnorm", "post", 0x4007ae6657400000ULL },  /* 2.96015614 */
	{ 1, "rmsnorm", "peri", 0x4007bc5a42c00000ULL },  /* 2.96696903 */
	{ 1, "rmsnorm", "mix", 0x4007ac81df800000ULL },  /* 2.95923209 */
	{ 1, "rmsnorm", "lns", 0x40079a9fc3000000ULL },  /* 2.95050003 */
	{ 1, "dyt", "pre", 0x40075c8e3c800000ULL },  /* 2.92019317 */
	{ 1, "dyt", "post", 0x40075431b4000000ULL },  /* 2.91611043 */
	{ 1, "dyt", "peri", 0x4007580667000000ULL },  /* 2.91798096 */
	{ 1, "dyt", "mix", 0x40075c8287000000ULL },  /* 2.92017084 */
	{ 1, "dyt", "lns", 0x400758956f000000ULL },  /* 2.91825377 */
	{ 1, "derf", "pre", 0x40075e6d36000000ULL },  /* 2.92110674 */
	{ 1, "derf", "post", 0x400759e2c2800000ULL },  /* 2.91888954 */
	{ 1, "derf", "peri", 0x40075910e0800000ULL },  /* 2.91848922 */
	{ 1, "derf", "mix", 0x40075dce68c00000ULL },  /* 2.92080385 */
	{ 1, "derf", "lns", 0x40075a2439c00000ULL },  /* 2.91901441 */
	{ 1, "none", "pre", 0x4006ab17cfc00000ULL },  /* 2.83354151 */
	{ 1, "none", "post", 0x4006ab17cfc00000ULL },  /* 2.83354151 */
	{ 1, "none", "peri", 0x4006ab17cfc00000ULL },  /* 2.83354151 */
	{ 1, "none", "mix", 0x4006ab17cfc00000ULL },  /* 2.83354151 */
	{ 1, "none", "lns", 0x40069dc976000000ULL },  /* 2.82704441 */
	{ 2, "layernorm", "pre", 0x4007556cb7400000ULL },  /* 2.91671127 */
	{ 2, "layernorm", "post", 0x400761ae74c00000ULL },  /* 2.92269603 */
	{ 2, "layernorm", "peri", 0x400783468a800000ULL },  /* 2.93909939 */
	{ 2, "layernorm", "mix", 0x4007616120c00000ULL },  /* 2.92254854 */
	{ 2, "layernorm", "lns", 0x40075be0dd800000ULL },  /* 2.91986249 */
	{ 2, "rmsnorm", "pre", 0x400793a831000000ULL },  /* 2.94709814 */
	{ 2, "rmsnorm", "post", 0x4007ae6657400000ULL },  /* 2.96015614 */
	{ 2, "rmsnorm", "peri", 0x4007bc5a42c00000ULL },  /* 2.96696903 */
	{ 2, "rmsnorm", "mix", 0x4007ac81df800000ULL },  /* 2.95923209 */
	{ 2, "rmsnorm", "lns", 0x40079a9fc3000000ULL },  /* 2.95050003 */
	{ 2, "dyt", "pre", 0x40075c8e3c800000ULL },  /* 2.92019317 */
	{ 2, "dyt", "post", 0x40075431b4000000ULL },  /* 2.91611043 */
	{ 2, "dyt", "peri", 0x4007580667000000ULL },  /* 2.91798096 */
	{ 2, "dyt", "mix", 0x40075c8287000000ULL },  /* 2.92017084 */
	{ 2, "dyt", "lns", 0x400758956f000000ULL },  /* 2.91825377 */
	{ 2, "derf", "pre", 0x40075e6d36000000ULL },  /* 2.92110674 */
	{ 2, "derf", "post", 0x400759e2c2800000ULL },  /* 2.91888954 */
	{ 2, "derf", "peri", 0x40075910e0800000ULL },  /* 2.91848922 */
	{ 2, "derf", "mix", 0x40075dce68c00000ULL },  /* 2.92080385 */
	{ 2, "derf", "lns", 0x40075a2439c00000ULL },  /* 2.91901441 */
	{ 2, "none", "pre", 0x4006ab17cfc00000ULL },  /* 2.83354151 */
	{ 2, "none", "post", 0x4006ab17cfc00000ULL },  /* 2.83354151 */
	{ 2, "none", "peri", 0x4006ab17cfc00000ULL },  /* 2.83354151 */
	{ 2, "none", "mix", 0x4006ab17cfc00000ULL },  /* 2.83354151 */
	{ 2, "none", "lns", 0x40069dc976000000ULL },  /* 2.82704441 */
	/* added with crmsnorm (its stream d−1 wide) and the deepnorm placement; every row above
	 * came out bit-identical from the same recording */
	{ 1, "layernorm", "deepnorm", 0x40076e2f7f400000ULL },  /* 2.92880153 */
	{ 1, "rmsnorm", "deepnorm", 0x4007b55cff000000ULL },  /* 2.96355628 */
	{ 1, "dyt", "deepnorm", 0x4007837d00c00000ULL },  /* 2.93920327 */
	{ 1, "derf", "deepnorm", 0x400787cc9b800000ULL },  /* 2.94130823 */
	{ 1, "none", "deepnorm", 0x4004fa7009400000ULL },  /* 2.622284 */
	{ 1, "crmsnorm", "pre", 0x4008072d35000000ULL },  /* 3.00350419 */
	{ 1, "crmsnorm", "post", 0x4007d8b041000000ULL },  /* 2.98080493 */
	{ 1, "crmsnorm", "peri", 0x4007e8ff6e400000ULL },  /* 2.98876845 */
	{ 1, "crmsnorm", "mix", 0x4007d5198a800000ULL },  /* 2.97905262 */
	{ 1, "crmsnorm", "lns", 0x4008021f88400000ULL },  /* 3.00103671 */
	{ 1, "crmsnorm", "deepnorm", 0x4007d5cf2e400000ULL },  /* 2.97939907 */
	{ 2, "layernorm", "deepnorm", 0x40076e2f7f400000ULL },  /* 2.92880153 */
	{ 2, "rmsnorm", "deepnorm", 0x4007b55cff000000ULL },  /* 2.96355628 */
	{ 2, "dyt", "deepnorm", 0x4007837d00c00000ULL },  /* 2.93920327 */
	{ 2, "derf", "deepnorm", 0x400787cc9b800000ULL },  /* 2.94130823 */
	{ 2, "none", "deepnorm", 0x4004fa7009400000ULL },  /* 2.622284 */
	{ 2, "crmsnorm", "pre", 0x4008072d35000000ULL },  /* 3.00350419 */
	{ 2, "crmsnorm", "post", 0x4007d8b041000000ULL },  /* 2.98080493 */
	{ 2, "crmsnorm", "peri", 0x4007e8ff6e400000ULL },  /* 2.98876845 */
	{ 2, "crmsnorm", "mix", 0x4007d5198a800000ULL },  /* 2.97905262 */
	{ 2, "crmsnorm", "lns", 0x4008021f88400000ULL },  /* 3.00103671 */
	{ 2, "crmsnorm", "deepnorm", 0x4007d5cf2e400000ULL },  /* 2.97939907 */
	{ 1, "batchnorm", "pre", 0x40116ee876f00000ULL },  /* 4.35830866 */
	{ 1, "batchnorm", "post", 0x4012c9d591c00000ULL },  /* 4.69710376 */
	{ 1, "batchnorm", "peri", 0x40124caefb500000ULL },  /* 4.57488625 */
	{ 1, "batchnorm", "mix", 0x4012cb5b09200000ULL },  /* 4.69858946 */
	{ 1, "batchnorm", "lns", 0x40119295b9200000ULL },  /* 4.39314927 */
	{ 1, "powernorm", "pre", 0x400764fbd9c00000ULL },  /* 2.92430849 */
	{ 1, "powernorm", "post", 0x40076437f9c00000ULL },  /* 2.92393489 */
	{ 1, "powernorm", "peri", 0x4007f0e9b4400000ULL },  /* 2.99263326 */
	{ 1, "powernorm", "mix", 0x400773dff2400000ULL },  /* 2.93157949 */
	{ 1, "powernorm", "lns", 0x400773fd57000000ULL },  /* 2.93163555 */
	{ 1, "un", "pre", 0x4007526010000000ULL },  /* 2.91522229 */
	{ 1, "un", "post", 0x400773a009000000ULL },  /* 2.93145759 */
	{ 1, "un", "peri", 0x4007848800800000ULL },  /* 2.93971253 */
	{ 1, "un", "mix", 0x40076cf9b1a00000ULL },  /* 2.92821063 */
	{ 1, "un", "lns", 0x400753f734800000ULL },  /* 2.91599885 */
	{ 2, "batchnorm", "pre", 0x40116ee876f00000ULL },  /* 4.35830866 */
	{ 2, "batchnorm", "post", 0x4012c9d591c00000ULL },  /* 4.69710376 */
	{ 2, "batchnorm", "peri", 0x40124caefb500000ULL },  /* 4.57488625 */
	{ 2, "batchnorm", "mix", 0x4012cb5b09200000ULL },  /* 4.69858946 */
	{ 2, "batchnorm", "lns", 0x40119295b9200000ULL },  /* 4.39314927 */
	{ 2, "powernorm", "pre", 0x400764fbd9c00000ULL },  /* 2.92430849 */
	{ 2, "powernorm", "post", 0x40076437f9c00000ULL },  /* 2.92393489 */
	{ 2, "powernorm", "peri", 0x4007f0e9b4400000ULL },  /* 2.99263326 */
	{ 2, "powernorm", "mix", 0x400773dff2400000ULL },  /* 2.93157949 */
	{ 2, "powernorm", "lns", 0x400773fd57000000ULL },  /* 2.93163555 */
	{ 2, "un", "pre", 0x4007526010000000ULL },  /* 2.91522229 */
	{ 2, "un", "post", 0x400773a009000000ULL },  /* 2.93145759 */
	{ 2, "un", "peri", 0x4007848800800000ULL },  /* 2.93971253 */
	{ 2, "un", "mix", 0x40076cf9b1a00000ULL },  /* 2.92821063 */
	{ 2, "un", "lns", 0x400753f734800000ULL },  /* 2.91599885 */
	/* batch-statistic kinds × deepnorm: recorded when the two branches met; every row above
	 * came out bit-identical from the same recording */
	{ 1, "batchnorm", "deepnorm", 0x4012aa897ca00000ULL },  /* 4.6665401 */
	{ 1, "powernorm", "deepnorm", 0x4007612c31e00000ULL },  /* 2.92244758 */
	{ 1, "un", "deepnorm", 0x40077e41ee800000ULL },  /* 2.93664919 */
	{ 2, "batchnorm", "deepnorm", 0x4012aa897ca00000ULL },  /* 4.6665401 */
	{ 2, "powernorm", "deepnorm", 0x4007612c31e00000ULL },  /* 2.92244758 */
	{ 2, "un", "deepnorm", 0x40077e41ee800000ULL },  /* 2.93664919 */
};
