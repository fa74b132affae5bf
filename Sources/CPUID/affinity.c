// Where threads run: the worker pool keeps its workers off the core of the thread that hands them work.
#define _GNU_SOURCE
#include "swiftrcnn_cpuid.h"

#if defined(__linux__)
#include <sched.h>
#include <unistd.h>

int srcnn_current_cpu(void) { return sched_getcpu(); }

int srcnn_allowed_cpu_count(void) {
    cpu_set_t allowed;
    return sched_getaffinity(0, sizeof allowed, &allowed) == 0 ? CPU_COUNT(&allowed) : -1;
}

int srcnn_current_thread(void) { return (int)gettid(); }

// Takes `cpu` out of the allowed CPUs of `thread` (0: the calling thread) if it is in them with another.
static int narrow(pid_t thread, int cpu) {
    cpu_set_t allowed;
    if (cpu < 0 || sched_getaffinity(thread, sizeof allowed, &allowed) != 0) return 0;
    if (!CPU_ISSET(cpu, &allowed) || CPU_COUNT(&allowed) < 2) return 0;
    CPU_CLR(cpu, &allowed);
    return sched_setaffinity(thread, sizeof allowed, &allowed) == 0;
}

int srcnn_exclude_cpu(int thread, int cpu) { return thread > 0 && narrow(thread, cpu); }

void srcnn_allow_cpu(int cpu) {
    cpu_set_t allowed;
    if (cpu < 0 || sched_getaffinity(0, sizeof allowed, &allowed) != 0) return;
    CPU_SET(cpu, &allowed);
    sched_setaffinity(0, sizeof allowed, &allowed);
}

int srcnn_leave_cpu(int cpu) {
    if (cpu < 0 || sched_getcpu() != cpu) return 0;
    // Narrowing the mask moves the thread off `cpu` at once; widening it again leaves it where it now runs.
    if (!narrow(0, cpu)) return 0;
    srcnn_allow_cpu(cpu);
    return 1;
}
#else
int srcnn_current_cpu(void) { return -1; }

int srcnn_allowed_cpu_count(void) { return -1; }

int srcnn_current_thread(void) { return 0; }

int srcnn_exclude_cpu(int thread, int cpu) {
    (void)thread;
    (void)cpu;
    return 0;
}

void srcnn_allow_cpu(int cpu) { (void)cpu; }

int srcnn_leave_cpu(int cpu) {
    (void)cpu;
    return 0;
}
#endif
