/* pool.h - a bounded pool of worker threads running jobs, reporting completions to the loop. */
#ifndef KLEEP_POOL_H
#define KLEEP_POOL_H

#include <stdbool.h>

struct pool;

/* A job: work() runs on a worker thread; the loop learns it ended through pool_done(). */
struct pool_job {
	void (*work)(struct pool_job *job);
	struct pool_job *next; /* owned by the pool while queued or done */
};

/*
 * Start `workers` threads.  *event_fd becomes readable (an eventfd) when a
 * job has started or finished; the loop then calls pool_done().  NULL on failure.
 */
struct pool *pool_new(int workers, int *event_fd);

/* Queue job (FIFO; never blocks).  The caller keeps ownership of job. */
void pool_submit(struct pool *s, struct pool_job *job);

/* Take the finished jobs (a list through ->next, oldest first), clearing the eventfd. */
struct pool_job *pool_done(struct pool *s);

/* Take the jobs still queued, not started (a list through ->next), e.g. at shutdown. */
struct pool_job *pool_drain(struct pool *s);

/* No job queued, running, or finished and not yet taken by pool_done(). */
bool pool_idle(struct pool *s);

/* Jobs waiting, and jobs running now. */
int pool_queued(struct pool *s);
int pool_running(struct pool *s);

/* Stop the threads once the running jobs return, and free the pool.
 * Queued jobs must have been drained first. */
void pool_free(struct pool *s);

#endif
