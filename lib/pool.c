/* pool.c - worker threads over one FIFO; finished jobs go back to the loop through an eventfd. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pool.h"

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct pool_job *head, *tail;      /* queued */
	struct pool_job *done_head, *done_tail;
	int n_queued, n_running;
	bool quit;
	int efd;
	int n_threads;
	pthread_t *threads;
};

#define WORKER_NICE 5 /* below the loop thread, so the socket answers fast under load */

static void *worker(void *arg)
{
	struct pool *s = arg;

	/* Linux nice values are per thread: this one only lowers the worker. */
	(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), WORKER_NICE);

	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->head && !s->quit)
			pthread_cond_wait(&s->wake, &s->lock);
		if (!s->head)
			break;
		struct pool_job *job = s->head;
		s->head = job->next;
		if (!s->head)
			s->tail = NULL;
		s->n_queued--;
		s->n_running++;
		/* Tell the loop a job started, so its status line says so. */
		uint64_t started = 1;
		if (write(s->efd, &started, sizeof(started)) < 0) {
		}
		pthread_mutex_unlock(&s->lock);

		job->next = NULL;
		job->work(job);

		pthread_mutex_lock(&s->lock);
		s->n_running--;
		if (s->done_tail)
			s->done_tail->next = job;
		else
			s->done_head = job;
		s->done_tail = job;
		uint64_t one = 1;
		/* Cannot fail short of a counter overflow, which the loop's reads prevent. */
		if (write(s->efd, &one, sizeof(one)) < 0) {
		}
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

struct pool *pool_new(int workers, int *event_fd)
{
	struct pool *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->wake, NULL);
	s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->threads = calloc((size_t)workers, sizeof(*s->threads));
	if (s->efd < 0 || !s->threads)
		goto fail;
	for (int i = 0; i < workers; i++) {
		if (pthread_create(&s->threads[i], NULL, worker, s) != 0)
			goto fail;
		s->n_threads++;
	}
	*event_fd = s->efd;
	return s;
fail:
	pool_free(s);
	return NULL;
}

void pool_submit(struct pool *s, struct pool_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&s->lock);
	if (s->tail)
		s->tail->next = job;
	else
		s->head = job;
	s->tail = job;
	s->n_queued++;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
}

struct pool_job *pool_done(struct pool *s)
{
	uint64_t n;
	if (read(s->efd, &n, sizeof(n)) < 0 && errno != EAGAIN) {
	}
	pthread_mutex_lock(&s->lock);
	struct pool_job *list = s->done_head;
	s->done_head = s->done_tail = NULL;
	pthread_mutex_unlock(&s->lock);
	return list;
}

struct pool_job *pool_drain(struct pool *s)
{
	pthread_mutex_lock(&s->lock);
	struct pool_job *list = s->head;
	s->head = s->tail = NULL;
	s->n_queued = 0;
	pthread_mutex_unlock(&s->lock);
	return list;
}

bool pool_idle(struct pool *s)
{
	pthread_mutex_lock(&s->lock);
	bool idle = !s->head && s->n_running == 0 && !s->done_head;
	pthread_mutex_unlock(&s->lock);
	return idle;
}

int pool_queued(struct pool *s)
{
	pthread_mutex_lock(&s->lock);
	int n = s->n_queued;
	pthread_mutex_unlock(&s->lock);
	return n;
}

int pool_running(struct pool *s)
{
	pthread_mutex_lock(&s->lock);
	int n = s->n_running;
	pthread_mutex_unlock(&s->lock);
	return n;
}

void pool_free(struct pool *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->quit = true;
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->lock);
	for (int i = 0; i < s->n_threads; i++)
		pthread_join(s->threads[i], NULL);
	if (s->efd >= 0)
		close(s->efd);
	pthread_cond_destroy(&s->wake);
	pthread_mutex_destroy(&s->lock);
	free(s->threads);
	free(s);
}
