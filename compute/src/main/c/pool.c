/*
 * The threads the library's kernels run on: the calling thread and OMP_NUM_THREADS - 1 workers of our own (the
 * CPUs this process may use where the variable is not set), started on first use and kept. Not OpenMP's: with
 * OMP_WAIT_POLICY=PASSIVE (which the launcher sets, so that ND4J's and OpenBLAS's OpenMP threads do not spin
 * against each other) each parallel region had to wake a sleeping thread, and on an idle virtual machine that took
 * ~70 us, a quarter of a 32-row product of the Q-Former's; spinning OpenMP threads (ACTIVE) would spin forever
 * beside the other libraries'. Ours spin for SPIN_NS after each task, so the next product of a stage finds them
 * awake, then sleep on a futex; before a product on oneDNN the Java side sends them to sleep at once (rest), since
 * on few cores a spinning worker held up oneDNN's OpenMP threads (measured: bench/README.md "Compute layer").
 *
 * One team at a time: a caller that finds the workers busy (another Java thread in a product) runs its task alone,
 * which every kernel's split allows, and which on a machine with as many callers as cores is what it should do.
 * Every kernel computes each output element on one thread in one order, so results do not depend on the split.
 */
#define _GNU_SOURCE
#include "blip2kernels.h"

#include <jni.h>
#include <immintrin.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* How long a worker waits awake for the next task: longer than the gaps between a stage's products. */
#define SPIN_NS 200000L

static struct {
    atomic_int busy;            /* a team is running */
    atomic_uint generation;     /* bumped per task: the futex the workers sleep on */
    atomic_int sleepers;
    atomic_int resting;         /* another library's threads are about to run: no spinning until the next task */
    atomic_int finished;        /* workers done with the current task */
    atomic_int arrived;         /* at the current barrier */
    atomic_uint barrier_generation;
    Task task;
    void *context;
    int count;                  /* threads in the current task, the caller included */
    int workers;                /* started */
    pthread_mutex_t starting;
} pool = {.starting = PTHREAD_MUTEX_INITIALIZER};

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

/* A worker's number and the generation before its first task (it may start running after that task is out). */
typedef struct {
    int t;
    unsigned seen;
} Start;

static void *work(void *argument) {
    Start start = *(Start *) argument;
    free(argument);
    int t = start.t;
    unsigned seen = start.seen;
    for (;;) {
        unsigned next;
        long since = now_ns();
        int spins = 0;
        while ((next = atomic_load(&pool.generation)) == seen) {
            _mm_pause();
            if (++spins % 64 != 0) {
                continue;
            }
            if (!atomic_load(&pool.resting) && now_ns() - since < SPIN_NS) {
                sched_yield(); /* a thread of another library waiting for this core gets it */
                continue;
            }
            atomic_fetch_add(&pool.sleepers, 1);
            syscall(SYS_futex, &pool.generation, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
            atomic_fetch_sub(&pool.sleepers, 1);
            since = now_ns();
        }
        seen = next;
        if (t < pool.count) {
            pool.task(pool.context, t, pool.count);
            atomic_fetch_add(&pool.finished, 1);
        }
    }
    return NULL;
}

int pool_threads(void) {
    static int threads;
    if (threads == 0) {
        const char *variable = getenv("OMP_NUM_THREADS");
        long wanted = variable == NULL ? 0 : strtol(variable, NULL, 10);
        if (wanted <= 0) {
            cpu_set_t cpus;
            wanted = sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? CPU_COUNT(&cpus) : 1;
        }
        threads = wanted > POOL_MAX_THREADS ? POOL_MAX_THREADS : (int) wanted;
    }
    return threads;
}

/* Starts workers up to threads - 1 (fewer where the system refuses one); the number running. */
static int start_workers(int threads) {
    pthread_mutex_lock(&pool.starting);
    while (pool.workers < threads - 1) {
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        Start *start = malloc(sizeof *start);
        int failed = start == NULL;
        if (!failed) {
            *start = (Start) {pool.workers + 1, atomic_load(&pool.generation)};
            failed = pthread_create(&thread, &attributes, work, start);
            if (failed) {
                free(start);
            }
        }
        pthread_attr_destroy(&attributes);
        if (failed) {
            break;
        }
        pool.workers++;
    }
    int workers = pool.workers;
    pthread_mutex_unlock(&pool.starting);
    return workers;
}

void pool_run(int threads, Task task, void *context) {
    if (threads > pool_threads()) {
        threads = pool_threads();
    }
    int expected = 0;
    if (threads <= 1 || !atomic_compare_exchange_strong(&pool.busy, &expected, 1)) {
        task(context, 0, 1);
        return;
    }
    int workers = start_workers(threads);
    if (threads > workers + 1) {
        threads = workers + 1;
    }
    pool.task = task;
    pool.context = context;
    pool.count = threads;
    atomic_store(&pool.finished, 0);
    atomic_store(&pool.resting, 0);
    atomic_fetch_add(&pool.generation, 1);
    if (atomic_load(&pool.sleepers) > 0) {
        syscall(SYS_futex, &pool.generation, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    }
    task(context, 0, threads);
    while (atomic_load(&pool.finished) < threads - 1) {
        _mm_pause();
    }
    atomic_store(&pool.busy, 0);
}

/* Sends the spinning workers to sleep, for another library's threads (oneDNN's, ND4J's) to have the cores. */
JNIEXPORT void JNICALL Java_dev_blip2dl4j_compute_NativeKernels_rest(JNIEnv *env, jclass cls) {
    atomic_store(&pool.resting, 1);
}

void pool_barrier(int count) {
    if (count <= 1) {
        return;
    }
    unsigned generation = atomic_load(&pool.barrier_generation);
    if (atomic_fetch_add(&pool.arrived, 1) == count - 1) {
        atomic_store(&pool.arrived, 0);
        atomic_fetch_add(&pool.barrier_generation, 1);
    } else {
        while (atomic_load(&pool.barrier_generation) == generation) {
            _mm_pause();
        }
    }
}
