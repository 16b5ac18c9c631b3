/* alloc_count.c - an LD_PRELOAD allocation counter for the benchmark (not the worker).
 *
 * What: counts the calls of malloc, calloc, realloc (and the aligned allocators, counted as
 * mallocs) of the process it is preloaded into, into a small file the benchmark reads while
 * the process runs, so a run's allocations per event are (end - start) / events, start-up
 * excluded. Each call is forwarded to glibc's own __libc_* entry points, so nothing is
 * looked up with dlsym (which allocates) and the allocator itself is unchanged.
 *
 * The file: ALLOC_COUNT_DIR/alloc-<pid>.cnt, ALLOC_COUNT_SLOTS little-endian uint64
 * counters (malloc, calloc, realloc, free), created by the constructor. Without
 * ALLOC_COUNT_DIR, or when the file cannot be made, the counters stay in this library's
 * memory and the run is merely not counted.
 *
 * Why batched per thread: a relaxed atomic add on one shared line from 100 threads costs
 * more than the allocation it counts; each thread adds locally and publishes every
 * ALLOC_COUNT_BATCH calls, so a reading lags by less than ALLOC_COUNT_BATCH per thread
 * and kind (a thread's unpublished rest is lost when it exits). The worker's threads live
 * as long as the run, so at thousands of events per reading the error is below 0.1 %.
 *
 * Where they come from: with ALLOC_COUNT_STACKS=N (and ALLOC_COUNT_DIR) every Nth
 * allocation call of a thread also stores its call stack (ALLOC_COUNT_DEPTH return
 * addresses, glibc's backtrace()) in alloc-<pid>.stk, a file of fixed slots filled until
 * it is full; tests/bench/alloc_stacks.py names the frames (the process's maps, saved as
 * alloc-<pid>.maps at start, when the file is full and at exit, and addr2line) and
 * ranks the call sites. The first backtrace() loads libgcc_s, which allocates: the
 * thread's own guard makes those calls plain ones.
 *
 * Thread-safety: any thread; the TLS is initial-exec (the library is preloaded, so its
 * TLS is static and touching it never allocates).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t k, size_t n);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t a, size_t n);
extern void __libc_free(void *p);

enum { K_MALLOC, K_CALLOC, K_REALLOC, K_FREE, ALLOC_COUNT_SLOTS };
#define ALLOC_COUNT_BATCH 64

#define ALLOC_COUNT_DEPTH     16
#define ALLOC_COUNT_STACK_MAX (1u << 20) /* slots in the stack file: 128 MiB */

static uint64_t fallback[ALLOC_COUNT_SLOTS];
static uint64_t *counters = fallback;
static __thread __attribute__((tls_model("initial-exec"))) uint32_t pending[ALLOC_COUNT_SLOTS];

/* The stack samples: slot i is ALLOC_COUNT_DEPTH addresses, the first one the kind. */
static void **stacks;
static uint32_t stack_every, stack_next;
static char maps_path[4096];
static __thread __attribute__((tls_model("initial-exec"))) uint32_t since_sample;
static __thread __attribute__((tls_model("initial-exec"))) int in_sample;

static void save_maps(void)
{
    char buf[65536];
    int in = open("/proc/self/maps", O_RDONLY | O_CLOEXEC), out;
    ssize_t n;

    if (in < 0)
        return;
    if ((out = open(maps_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) >= 0) {
        while ((n = read(in, buf, sizeof buf)) > 0)
            if (write(out, buf, (size_t)n) != n)
                break;
        close(out);
    }
    close(in);
}

static void sample(int k)
{
    uint32_t i;

    if (in_sample || ++since_sample < stack_every)
        return;
    since_sample = 0;
    in_sample = 1;
    i = __atomic_fetch_add(&stack_next, 1, __ATOMIC_RELAXED);
    if (i < ALLOC_COUNT_STACK_MAX) {
        void **slot = stacks + (size_t)i * ALLOC_COUNT_DEPTH;
        int n = backtrace(slot + 1, ALLOC_COUNT_DEPTH - 1);
        slot[0] = (void *)(uintptr_t)(k + 1);
        for (int j = n + 1; j < ALLOC_COUNT_DEPTH; j++)
            slot[j] = NULL;
    }
    if (i == ALLOC_COUNT_STACK_MAX - 1)
        save_maps();
    in_sample = 0;
}

static inline void count(int k)
{
    if (++pending[k] >= ALLOC_COUNT_BATCH) {
        __atomic_fetch_add(&counters[k], pending[k], __ATOMIC_RELAXED);
        pending[k] = 0;
    }
    if (stacks && k != K_FREE)
        sample(k);
}

static void stacks_init(const char *dir)
{
    const char *every = getenv("ALLOC_COUNT_STACKS");
    char path[4096];
    size_t sz = (size_t)ALLOC_COUNT_STACK_MAX * ALLOC_COUNT_DEPTH * sizeof(void *);
    void *probe[2], *m;
    int fd;

    if (!every || atoi(every) <= 0 ||
        snprintf(path, sizeof path, "%s/alloc-%ld.stk", dir, (long)getpid()) >= (int)sizeof path ||
        snprintf(maps_path, sizeof maps_path, "%s/alloc-%ld.maps", dir, (long)getpid()) >=
            (int)sizeof maps_path)
        return;
    in_sample = 1;
    backtrace(probe, 2); /* loads libgcc_s now, not inside a counted call */
    in_sample = 0;
    if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
        return;
    if (ftruncate(fd, (off_t)sz) == 0 &&
        (m = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) != MAP_FAILED) {
        stack_every = (uint32_t)atoi(every);
        stacks = m;
        save_maps();
    }
    close(fd);
}

/* The maps again with what was dlopen'd since the start. */
__attribute__((destructor)) static void alloc_count_fini(void)
{
    if (stacks)
        save_maps();
}

__attribute__((constructor)) static void alloc_count_init(void)
{
    const char *dir = getenv("ALLOC_COUNT_DIR");
    char path[4096];
    int fd;
    void *m;

    if (!dir || !*dir ||
        snprintf(path, sizeof path, "%s/alloc-%ld.cnt", dir, (long)getpid()) >= (int)sizeof path)
        return;
    if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
        return;
    if (ftruncate(fd, sizeof fallback) == 0 &&
        (m = mmap(NULL, sizeof fallback, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) != MAP_FAILED) {
        uint64_t *c = m;
        for (int k = 0; k < ALLOC_COUNT_SLOTS; k++)
            c[k] = fallback[k];
        counters = c;
    }
    close(fd);
    stacks_init(dir);
}

void *malloc(size_t n)
{
    count(K_MALLOC);
    return __libc_malloc(n);
}

void *calloc(size_t k, size_t n)
{
    count(K_CALLOC);
    return __libc_calloc(k, n);
}

void *realloc(void *p, size_t n)
{
    count(K_REALLOC);
    return __libc_realloc(p, n);
}

void free(void *p)
{
    if (p)
        count(K_FREE);
    __libc_free(p);
}

int posix_memalign(void **out, size_t a, size_t n)
{
    void *p;

    if (a < sizeof(void *) || (a & (a - 1)) != 0)
        return EINVAL;
    count(K_MALLOC);
    if (!(p = __libc_memalign(a, n)))
        return ENOMEM;
    *out = p;
    return 0;
}

void *aligned_alloc(size_t a, size_t n)
{
    count(K_MALLOC);
    return __libc_memalign(a, n);
}

void *memalign(size_t a, size_t n)
{
    count(K_MALLOC);
    return __libc_memalign(a, n);
}
