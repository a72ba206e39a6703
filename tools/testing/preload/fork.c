// SPDX-License-Identifier: GPL-2.0
/*
 * preload-fork: a heap block survives fork() as anonymous memory would (issue 11, "fork keeps
 * the heap"). `make test` runs it in the VM under the preload with every block in the tier
 * (preload-fork: the kernel copies MORERAM_ALLOC_FORK_COPY mappings into the child), and on
 * the host, where the C library's heap is anonymous memory, so that the program itself is
 * known to be right.
 *
 *   preload-fork [SIZE]        (1 MiB: above the preload's default threshold)
 *
 * 1. The parent writes pattern A over a heap block and forks. The child sees A; then child and
 *    parent each write their own pattern, meeting in between, and each sees only its own.
 * 2. The child forks a grandchild: it sees the child's pattern, writes its own, and the child
 *    still sees its own afterwards. The child frees the inherited block and allocates again.
 * 3. A child execs this program (the preload stays in the environment), which allocates,
 *    writes and checks a block of its own.
 * 4. A thread allocates and frees while the main thread forks 16 times; each child allocates,
 *    frees and exits: the allocator's locks are consistent in the child.
 *
 * Exits 0 when every check held; prints the first that did not.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static size_t size = 1 << 20;

static void fill(unsigned char *p, unsigned char v)
{
	memset(p, v, size);
}

/* Whether every byte of the block is `v`. */
static int is(const unsigned char *p, unsigned char v)
{
	for (size_t i = 0; i < size; i++)
		if (p[i] != v)
			return 0;
	return 1;
}

static void fail(const char *who, const char *what)
{
	fprintf(stderr, "preload-fork: %s: %s\n", who, what);
	_exit(1);
}

static void xwrite(int fd)
{
	if (write(fd, "x", 1) != 1)
		fail("pipe", "write");
}

static void xread(int fd)
{
	char c;

	if (read(fd, &c, 1) != 1)
		fail("pipe", "read");
}

/* Waits for a child; whether it exited 0. */
static int reap(pid_t pid, const char *who)
{
	int st;

	if (waitpid(pid, &st, 0) != pid) {
		fprintf(stderr, "preload-fork: waitpid %s\n", who);
		return 0;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "preload-fork: %s: %s %d\n", who,
			WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		return 0;
	}
	return 1;
}

static void grandchild(unsigned char *p)
{
	if (!is(p, 'C'))
		fail("grandchild", "the child's pattern is not there");
	fill(p, 'G');
	if (!is(p, 'G'))
		fail("grandchild", "its own pattern did not stick");
	_exit(0);
}

static void child(unsigned char *p, int to_parent, int from_parent)
{
	pid_t g;
	unsigned char *q;

	if (!is(p, 'A'))
		fail("child", "the heap is not as it was at fork");
	fill(p, 'C');
	xwrite(to_parent);	/* both have written once the parent answers */
	xread(from_parent);
	if (!is(p, 'C'))
		fail("child", "sees the parent's writes");
	g = fork();
	if (g < 0)
		fail("child", "fork");
	if (g == 0)
		grandchild(p);
	if (!reap(g, "grandchild"))
		_exit(1);
	if (!is(p, 'C'))
		fail("child", "sees the grandchild's writes");
	free(p);
	q = malloc(size);
	if (!q)
		fail("child", "malloc after fork");
	fill(q, 'D');
	if (!is(q, 'D'))
		fail("child", "a new block after fork");
	free(q);
	_exit(0);
}

static atomic_int stop;

static void *churn(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		void *a = malloc(size), *b = malloc(100);

		if (!a || !b)
			fail("thread", "malloc");
		memset(a, 1, 4096);
		free(b);
		free(a);
	}
	return NULL;
}

static int forks_with_a_thread(void)
{
	pthread_t t;
	int ok = 1;

	if (pthread_create(&t, NULL, churn, NULL))
		fail("parent", "pthread_create");
	for (int i = 0; i < 16; i++) {
		pid_t pid = fork();

		if (pid < 0)
			fail("parent", "fork with a thread");
		if (pid == 0) {
			unsigned char *q = malloc(size);

			if (!q)
				fail("child of a threaded parent", "malloc");
			fill(q, 'T');
			if (!is(q, 'T'))
				fail("child of a threaded parent", "pattern");
			free(q);
			_exit(0);
		}
		ok &= reap(pid, "child of a threaded parent");
	}
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	return ok;
}

int main(int argc, char **argv)
{
	int up[2], down[2];
	unsigned char *p;
	pid_t pid;
	int ok = 1;

	if (argc > 1 && !strcmp(argv[1], "--after-exec")) {
		p = malloc(size);
		if (!p)
			fail("exec'd program", "malloc");
		fill(p, 'E');
		if (!is(p, 'E'))
			fail("exec'd program", "pattern");
		free(p);
		return 0;
	}
	if (argc > 1)
		size = strtoul(argv[1], NULL, 0);
	if (size < 1) {
		fprintf(stderr, "usage: preload-fork [SIZE]\n");
		return 64;
	}
	p = malloc(size);
	if (!p || pipe(up) || pipe(down))
		fail("parent", "malloc or pipe");
	fill(p, 'A');
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		fail("parent", "fork");
	if (pid == 0)
		child(p, up[1], down[0]);
	xread(up[0]);
	fill(p, 'P');
	xwrite(down[1]);
	if (!is(p, 'P'))
		fail("parent", "sees the child's writes");
	ok &= reap(pid, "child");
	if (!is(p, 'P'))
		fail("parent", "sees the child's or grandchild's writes after they exited");

	pid = fork();
	if (pid < 0)
		fail("parent", "fork for exec");
	if (pid == 0) {
		execl("/proc/self/exe", argv[0], "--after-exec", (char *)NULL);
		fail("child", "exec");
	}
	ok &= reap(pid, "exec after fork");

	ok &= forks_with_a_thread();
	free(p);
	if (ok)
		printf("preload-fork: heap kept across fork, private after it; grandchild, exec and fork with a thread: ok\n");
	return !ok;
}
