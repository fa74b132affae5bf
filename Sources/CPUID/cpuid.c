#include "swiftrcnn_cpuid.h"

#include <string.h>

#ifndef SWIFTRCNN_BUILD_TARGET_CPU
#define SWIFTRCNN_BUILD_TARGET_CPU "generic"
#endif

const char *srcnn_build_target_cpu(void) { return SWIFTRCNN_BUILD_TARGET_CPU; }

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t read_xcr0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

uint32_t srcnn_cpu_features(void) {
    unsigned int a, b, c, d;
    uint32_t f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const unsigned int leaf1_ecx = c;
    if (leaf1_ecx & bit_SSE4_2) f |= SRCNN_CPU_SSE42;
    if (leaf1_ecx & bit_POPCNT) f |= SRCNN_CPU_POPCNT;
    if (leaf1_ecx & bit_MOVBE) f |= SRCNN_CPU_MOVBE;
    // AVX state (XMM and YMM, XCR0 bits 1-2) must be enabled by the OS before any VEX instruction may run.
    const int os_avx = (leaf1_ecx & bit_OSXSAVE) && (read_xcr0() & 0x6) == 0x6;
    // AVX-512 also needs the opmask and upper ZMM states (XCR0 bits 5-7).
    const int os_avx512 = os_avx && (read_xcr0() & 0xe0) == 0xe0;
    if (os_avx) {
        if (leaf1_ecx & bit_AVX) f |= SRCNN_CPU_AVX;
        if (leaf1_ecx & bit_FMA) f |= SRCNN_CPU_FMA;
        if (leaf1_ecx & bit_F16C) f |= SRCNN_CPU_F16C;
    }
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        if (b & bit_BMI) f |= SRCNN_CPU_BMI1;
        if (b & bit_BMI2) f |= SRCNN_CPU_BMI2;
        if (os_avx && (b & bit_AVX2)) f |= SRCNN_CPU_AVX2;
        if (os_avx512) {
            if (b & bit_AVX512F) f |= SRCNN_CPU_AVX512F;
            if (b & bit_AVX512CD) f |= SRCNN_CPU_AVX512CD;
            if (b & bit_AVX512BW) f |= SRCNN_CPU_AVX512BW;
            if (b & bit_AVX512DQ) f |= SRCNN_CPU_AVX512DQ;
            if (b & bit_AVX512VL) f |= SRCNN_CPU_AVX512VL;
        }
    }
    if (__get_cpuid(0x80000001, &a, &b, &c, &d) && (c & bit_LZCNT)) f |= SRCNN_CPU_LZCNT;
    return f;
}

void srcnn_cpu_brand(char *out, int capacity) {
    if (capacity <= 0) return;
    out[0] = 0;
    unsigned int regs[12];
    unsigned int top = __get_cpuid_max(0x80000000, 0);
    if (top < 0x80000004) return;
    for (unsigned int i = 0; i < 3; i++) {
        __get_cpuid(0x80000002 + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2], &regs[4 * i + 3]);
    }
    char brand[49];
    memcpy(brand, regs, 48);
    brand[48] = 0;
    const char *start = brand;
    while (*start == ' ')
        start++;
    size_t n = strlen(start);
    while (n > 0 && start[n - 1] == ' ')
        n--;
    if (n >= (size_t)capacity) n = (size_t)capacity - 1;
    memcpy(out, start, n);
    out[n] = 0;
}

#else

uint32_t srcnn_cpu_features(void) { return 0; }

void srcnn_cpu_brand(char *out, int capacity) {
    if (capacity > 0) out[0] = 0;
}

#endif
