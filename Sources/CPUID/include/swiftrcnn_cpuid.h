// The things Swift cannot do itself: ask the x86 CPU what it supports (cpuid, xgetbv), hint a spin-wait, prefetch.
// A thin shim in the style of swift-numerics' _NumericsShims; all logic using it is Swift (Sources/Ops/ISA.swift).
#ifndef SWIFTRCNN_CPUID_H
#define SWIFTRCNN_CPUID_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Instruction-set features the kernels care about, as bits of `srcnn_cpu_features()`.
/// Each is set only when the CPU has it and the operating system saves its registers (XCR0).
enum {
    SRCNN_CPU_SSE42 = 1 << 0,
    SRCNN_CPU_AVX = 1 << 1,
    SRCNN_CPU_AVX2 = 1 << 2,
    SRCNN_CPU_FMA = 1 << 3,
    SRCNN_CPU_F16C = 1 << 4,
    SRCNN_CPU_BMI1 = 1 << 5,
    SRCNN_CPU_BMI2 = 1 << 6,
    SRCNN_CPU_LZCNT = 1 << 7,
    SRCNN_CPU_MOVBE = 1 << 8,
    SRCNN_CPU_POPCNT = 1 << 9,
    SRCNN_CPU_AVX512F = 1 << 10,
    SRCNN_CPU_AVX512CD = 1 << 11,
    SRCNN_CPU_AVX512BW = 1 << 12,
    SRCNN_CPU_AVX512DQ = 1 << 13,
    SRCNN_CPU_AVX512VL = 1 << 14,
};

/// The feature bits above for the CPU this process runs on (0 on a CPU that is not x86-64).
uint32_t srcnn_cpu_features(void);

/// Copies the CPU's brand string ("AMD EPYC 7B13 64-Core Processor") into `out` (NUL-terminated, at most
/// `capacity` bytes including the NUL); an empty string where the CPU does not report one.
void srcnn_cpu_brand(char *out, int capacity);

/// The CPU the library (all but the per-instruction-set kernels) was compiled for: SWIFTRCNN_TARGET_CPU at build
/// time ("native", "znver3", ...), or "generic" for the architecture's baseline.
const char *srcnn_build_target_cpu(void);

/// The CPU the calling thread runs on (Linux `sched_getcpu`), or -1 where that is not known.
int srcnn_current_cpu(void);

/// If the calling thread runs on CPU `cpu` and may run on another, moves it to one of the others it may run on,
/// leaving its allowed CPUs as they were; returns 1 if it moved. (Linux; elsewhere it does nothing and returns 0.)
int srcnn_leave_cpu(int cpu);

/// How many CPUs the calling thread may run on, or -1 where that is not known.
int srcnn_allowed_cpu_count(void);

/// The calling thread's kernel id (Linux `gettid`), or 0 where there is none.
int srcnn_current_thread(void);

/// Takes CPU `cpu` out of the CPUs thread `thread` (a kernel id from `srcnn_current_thread`) may run on, if it may
/// run on it and on another; returns 1 if it did. A sleeping thread then wakes up on another CPU. (Linux.)
int srcnn_exclude_cpu(int thread, int cpu);

/// Adds CPU `cpu` back to the CPUs the calling thread may run on (after `srcnn_exclude_cpu`). (Linux.)
void srcnn_allow_cpu(int cpu);

/// A 64-byte aligned buffer of at least `bytes` bytes that the calling thread keeps between calls (freed when the
/// thread ends): the same buffer again while it is large enough, its contents whatever was last written. NULL if
/// the memory cannot be had. Only one user per thread at a time (the GEMM's packing, a leaf that calls nothing).
void *srcnn_thread_scratch(size_t bytes);

/// Makes every thread's kept scratch buffer be freed at its next `srcnn_thread_scratch` (and one of the size then
/// asked for allocated): `swiftrcnn.release_memory()`.
void srcnn_release_thread_scratch(void);

/// Bytes of the calling thread's kept scratch buffer (0 if none).
size_t srcnn_thread_scratch_bytes(void);

/// The spin-wait hint (x86 `pause`, ARM `yield`) for loops that poll memory another core will write.
static inline void srcnn_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield");
#endif
}

/// Asks the cache to fetch the line holding `p` for writing (a hint: no fault, whatever `p`), for the GEMM
/// micro-kernels, whose tile of C is read and written only after a long loop over the depth.
static inline void srcnn_prefetch_for_write(const void *p) { __builtin_prefetch(p, 1, 3); }

/// Asks the cache to fetch the line holding `p` for reading into L2 (x86 `prefetcht1`; a hint: no fault, whatever
/// `p`), for the GEMM's look-ahead at the source of B it packs next.
static inline void srcnn_prefetch_ahead(const void *p) { __builtin_prefetch(p, 0, 2); }

#ifdef __cplusplus
}
#endif

#endif
