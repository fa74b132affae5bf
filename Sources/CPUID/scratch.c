// Scratch memory kept by each thread between calls: the GEMM's packing buffers.
//
// A product of a few milliseconds packs megabytes of its operands into buffers it allocated for the call. Freshly
// allocated, those pages are often fresh to the process too (glibc trims the top of its heaps and gives the larger
// blocks their own mappings), and the kernel zero-fills them on first touch, a fault per 4 KiB page: on a 2-core
// AMD EPYC VM 100-640 faults of ~3 us per product on bench/gemm.py's problems, 3-10% of their time. A thread's scratch
// buffer stays with it instead.
#include "swiftrcnn_cpuid.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct scratch {
    void *pointer;
    size_t capacity;
    unsigned generation;
};

static _Thread_local struct scratch kept;
static atomic_uint generation;
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

// Frees the thread's buffer when the thread ends (the key's value is the buffer), and forgets it, in case a later
// destructor of the same thread asks for scratch again.
static void release_at_exit(void *pointer) {
    if (kept.pointer == pointer) {
        kept.pointer = NULL;
        kept.capacity = 0;
    }
    free(pointer);
}
static void make_exit_key(void) { pthread_key_create(&exit_key, release_at_exit); }

void *srcnn_thread_scratch(size_t bytes) {
    unsigned current = atomic_load_explicit(&generation, memory_order_relaxed);
    if (kept.pointer && kept.capacity >= bytes && kept.generation == current) return kept.pointer;
    pthread_once(&exit_key_once, make_exit_key);
    free(kept.pointer);
    kept.pointer = NULL;
    kept.capacity = 0;
    // Whole 64 KiB units (at least one), so that slowly growing requests do not reallocate every time.
    size_t unit = (size_t)1 << 16;
    size_t capacity = bytes > SIZE_MAX - unit ? bytes : (bytes + unit - 1) / unit * unit;
    if (capacity == 0) capacity = unit;
    void *pointer = NULL;
    if (posix_memalign(&pointer, 64, capacity) != 0) pointer = NULL;
    if (pointer) {
        kept.pointer = pointer;
        kept.capacity = capacity;
        kept.generation = current;
    }
    pthread_setspecific(exit_key, pointer);
    return pointer;
}

void srcnn_release_thread_scratch(void) { atomic_fetch_add_explicit(&generation, 1, memory_order_relaxed); }

size_t srcnn_thread_scratch_bytes(void) { return kept.pointer ? kept.capacity : 0; }
