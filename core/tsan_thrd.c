/*
 * Linked into every executable of a ThreadSanitizer build, and nothing
 * else. librdkafka threads and locks with C11's <threads.h>, which gcc
 * 12's ThreadSanitizer does not intercept: a thread it starts has no
 * sanitizer state (its first malloc crashes in the sanitizer's allocator),
 * and its locks are invisible (every access they order reads as a race).
 * These definitions, in the executable, interpose glibc's for every
 * library and go through the pthread calls the sanitizer intercepts.
 * glibc's C11 types are its pthread types (thrd_t is a pthread_t, mtx_t a
 * pthread_mutex_t, cnd_t a pthread_cond_t, once_flag a pthread_once_t),
 * and its thrd_join reads an int from the pointer a thread returns, as
 * here.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

// Exported from the executable, whatever the build's visibility preset:
// only a symbol in its dynamic table interposes.
#pragma GCC visibility push(default)

struct tsan_thrd {
	thrd_start_t fn;
	void        *arg;
};

int thrd_create(thrd_t *thr, thrd_start_t fn, void *arg);

static void *
tsan_thrd__run(void *p)
{
	struct tsan_thrd t = *(struct tsan_thrd *)p;

	free(p);
	return (void *)(intptr_t)t.fn(t.arg);
}

int
thrd_create(thrd_t *thr, thrd_start_t fn, void *arg)
{
	struct tsan_thrd *t = malloc(sizeof(*t));
	int               rc;

	if (t == NULL)
		return thrd_nomem;
	t->fn  = fn;
	t->arg = arg;
	if ((rc = pthread_create(thr, NULL, tsan_thrd__run, t)) != 0) {
		free(t);
		return rc == ENOMEM ? thrd_nomem : thrd_error;
	}
	return thrd_success;
}

int thrd_join(thrd_t thr, int *res);
int thrd_detach(thrd_t thr);

/* Joined and detached through pthread's, so that the sanitizer sees the
 * thread end (glibc's own do not go through the intercepted calls). */
int
thrd_join(thrd_t thr, int *res)
{
	void *ret;

	if (pthread_join(thr, &ret) != 0)
		return thrd_error;
	if (res != NULL)
		*res = (int)(intptr_t)ret;
	return thrd_success;
}

int
thrd_detach(thrd_t thr)
{
	return pthread_detach(thr) == 0 ? thrd_success : thrd_error;
}

int mtx_init(mtx_t *m, int type);
int mtx_lock(mtx_t *m);
int mtx_trylock(mtx_t *m);
int mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict ts);
int mtx_unlock(mtx_t *m);
void mtx_destroy(mtx_t *m);
int cnd_init(cnd_t *c);
int cnd_signal(cnd_t *c);
int cnd_broadcast(cnd_t *c);
int cnd_wait(cnd_t *c, mtx_t *m);
int cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m,
		  const struct timespec *restrict ts);
void cnd_destroy(cnd_t *c);
void call_once(once_flag *flag, void (*fn)(void));

static int
tsan_thrd__rc(int rc)
{
	switch (rc) {
	case 0:
		return thrd_success;
	case ETIMEDOUT:
		return thrd_timedout;
	case EBUSY:
		return thrd_busy;
	case ENOMEM:
		return thrd_nomem;
	default:
		return thrd_error;
	}
}

int
mtx_init(mtx_t *m, int type)
{
	pthread_mutexattr_t a;
	int                 rc;

	pthread_mutexattr_init(&a);
	if (type & mtx_recursive)
		pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	rc = pthread_mutex_init((pthread_mutex_t *)m, &a);
	pthread_mutexattr_destroy(&a);
	return tsan_thrd__rc(rc);
}

int
mtx_lock(mtx_t *m)
{
	return tsan_thrd__rc(pthread_mutex_lock((pthread_mutex_t *)m));
}

int
mtx_trylock(mtx_t *m)
{
	return tsan_thrd__rc(pthread_mutex_trylock((pthread_mutex_t *)m));
}

int
mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict ts)
{
	return tsan_thrd__rc(
	    pthread_mutex_timedlock((pthread_mutex_t *)m, ts));
}

int
mtx_unlock(mtx_t *m)
{
	return tsan_thrd__rc(pthread_mutex_unlock((pthread_mutex_t *)m));
}

void
mtx_destroy(mtx_t *m)
{
	pthread_mutex_destroy((pthread_mutex_t *)m);
}

int
cnd_init(cnd_t *c)
{
	return tsan_thrd__rc(pthread_cond_init((pthread_cond_t *)c, NULL));
}

int
cnd_signal(cnd_t *c)
{
	return tsan_thrd__rc(pthread_cond_signal((pthread_cond_t *)c));
}

int
cnd_broadcast(cnd_t *c)
{
	return tsan_thrd__rc(pthread_cond_broadcast((pthread_cond_t *)c));
}

int
cnd_wait(cnd_t *c, mtx_t *m)
{
	return tsan_thrd__rc(pthread_cond_wait((pthread_cond_t *)c,
					       (pthread_mutex_t *)m));
}

int
cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m,
	      const struct timespec *restrict ts)
{
	return tsan_thrd__rc(pthread_cond_timedwait(
	    (pthread_cond_t *)c, (pthread_mutex_t *)m, ts));
}

void
cnd_destroy(cnd_t *c)
{
	pthread_cond_destroy((pthread_cond_t *)c);
}

void
call_once(once_flag *flag, void (*fn)(void))
{
	pthread_once((pthread_once_t *)flag, fn);
}

#pragma GCC visibility pop
