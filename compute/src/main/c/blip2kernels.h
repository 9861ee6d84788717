/*
 * What the library's kernel files share: the instruction-set levels (the order of NativeKernels.Isa) and the
 * function attributes that compile one function for one level.
 */
#ifndef BLIP2KERNELS_H
#define BLIP2KERNELS_H

enum { SCALAR = 0, AVX2 = 1, AVX512 = 2, AVX512_VNNI = 3, AMX_BF16 = 4 };

#define AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define AVX2_TARGET __attribute__((target("avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))

#endif
