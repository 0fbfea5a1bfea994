#include "mailroom/consumer.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * The file holds one claimed id per line, in the order of the claims; a
 * '\' or a newline in an id is written as "\\" or "\n". A line is whole
 * only with its newline: a crash in the middle of an append leaves a last
 * line without one, which the next open drops and cuts off. That claim
 * never returned MR_OK, so nothing acted on it.
 */

struct guard__slot {
	uint64_t hash;
	char    *id; /* NULL: empty */
};

struct mr_guard {
	pthread_mutex_t     lock;
	int                 fd;
	off_t               end; /* of the last whole line */
	int                 broken; /* MR_EIO once a write failed */
	struct guard__slot *slots;
	size_t              cap; /* a power of 2 */
	size_t              count;
};

static uint64_t
guard__hash(const char *s, size_t len)
{
	uint64_t h = 14695981039346656037ull; // FNV-1a

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h;
}

static struct guard__slot *
guard__find(struct guard__slot *slots, size_t cap, uint64_t h,
	    const char *id, size_t len)
{
	for (size_t i = h & (cap - 1);; i = (i + 1) & (cap - 1)) {
		struct guard__slot *s = &slots[i];

		if (s->id == NULL ||
		    (s->hash == h && strncmp(s->id, id, len) == 0 &&
		     s->id[len] == '\0'))
			return s;
	}
}

static int
guard__grow(mr_guard *g)
{
	size_t              cap = g->cap ? g->cap * 2 : 1024;
	struct guard__slot *slots = calloc(cap, sizeof(*slots));

	if (slots == NULL)
		return MR_ENOMEM;
	for (size_t i = 0; i < g->cap; i++) {
		struct guard__slot *s = &g->slots[i];

		if (s->id != NULL)
			*guard__find(slots, cap, s->hash, s->id,
				     strlen(s->id)) = *s;
	}
	free(g->slots);
	g->slots = slots;
	g->cap   = cap;
	return MR_OK;
}

/* @returns MR_OK (added), MR_EEXIST or MR_ENOMEM. */
static int
guard__add(mr_guard *g, const char *id, size_t len)
{
	struct guard__slot *s;
	uint64_t            h = guard__hash(id, len);
	char               *copy;

	if ((g->count + 1) * 2 > g->cap && guard__grow(g) != MR_OK)
		return MR_ENOMEM;
	s = guard__find(g->slots, g->cap, h, id, len);
	if (s->id != NULL)
		return MR_EEXIST;
	if ((copy = malloc(len + 1)) == NULL)
		return MR_ENOMEM;
	memcpy(copy, id, len);
	copy[len] = '\0';
	s->hash   = h;
	s->id     = copy;
	g->count++;
	return MR_OK;
}

/* @returns the line for \p id (escaped, with its newline) in \p out, which
 * has room for 2 * len + 1 bytes; its length. */
static size_t
guard__encode(const char *id, size_t len, char *out)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if (id[i] == '\\' || id[i] == '\n') {
			out[n++] = '\\';
			out[n++] = id[i] == '\n' ? 'n' : '\\';
		} else {
			out[n++] = id[i];
		}
	}
	out[n++] = '\n';
	return n;
}

/* Unescape a line in place. @returns its length, or 0 if unusable. */
static size_t
guard__decode(char *line, size_t len)
{
	size_t n = 0;

	if (memchr(line, '\0', len) != NULL)
		return 0; // blocks a crash left unwritten, not an id
	for (size_t i = 0; i < len; i++) {
		if (line[i] == '\\' && i + 1 < len &&
		    (line[i + 1] == 'n' || line[i + 1] == '\\'))
			line[n++] = line[++i] == 'n' ? '\n' : '\\';
		else
			line[n++] = line[i];
	}
	return n > MR_ID_MAX ? 0 : n;
}

static int
guard__write_all(int fd, const char *p, size_t n, off_t at)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, at);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
		at += w;
	}
	return 0;
}

static int
guard__sync_dir(const char *path)
{
	char *copy = strdup(path);
	int   fd, rc = -1;

	if (copy == NULL)
		return -1;
	if ((fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >=
	    0) {
		rc = fsync(fd);
		close(fd);
	}
	free(copy);
	return rc;
}

static int
guard__read_file(int fd, char **out, size_t *len)
{
	struct stat st;
	char       *buf;
	size_t      n = 0;

	if (fstat(fd, &st) != 0)
		return MR_EIO;
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
		return MR_ENOMEM;
	while (n < (size_t)st.st_size) {
		ssize_t r = pread(fd, buf + n, (size_t)st.st_size - n,
				  (off_t)n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			return MR_EIO;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*out = buf;
	*len = n;
	return MR_OK;
}

/* Put \p data (the kept lines) in a new file in place of the old one.
 * @returns MR_OK with g->fd the new file, locked. */
static int
guard__compact(mr_guard *g, const char *path, const char *data, size_t n,
	       char *errstr, size_t errstr_size)
{
	size_t len = strlen(path);
	char  *tmp = malloc(len + 5);
	int    fd  = -1;

	if (tmp == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return MR_ENOMEM;
	}
	memcpy(tmp, path, len);
	memcpy(tmp + len, ".tmp", 5);
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0 ||
	    guard__write_all(fd, data, n, 0) != 0 || fdatasync(fd) != 0 ||
	    rename(tmp, path) != 0 || guard__sync_dir(path) != 0) {
		snprintf(errstr, errstr_size, "cannot compact %s: %s", path,
			 strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(tmp);
		}
		free(tmp);
		return MR_EIO;
	}
	close(g->fd);
	g->fd  = fd;
	g->end = (off_t)n;
	free(tmp);
	return MR_OK;
}

/* Load the file's whole lines, the most recent \p max_ids (0: all) of
 * them. When the file holds more (or repeats), *out gets the kept lines,
 * in their order, for a new file (free() it). */
static int
guard__load(mr_guard *g, char *buf, size_t len, size_t max_ids, char **out,
	    size_t *out_len)
{
	size_t  nlines = 0, i, start, n;
	char  **lines;
	size_t *lens;
	bool   *keep;
	bool    compact = false;
	int     rc      = MR_OK;

	*out   = NULL;
	g->end = 0;
	for (i = 0; i < len; i++)
		nlines += buf[i] == '\n';
	if (nlines == 0)
		return MR_OK;
	lines = malloc(nlines * sizeof(*lines));
	lens  = malloc(nlines * sizeof(*lens));
	keep  = calloc(nlines, sizeof(*keep));
	if (lines == NULL || lens == NULL || keep == NULL) {
		rc = MR_ENOMEM;
		goto out;
	}
	for (i = 0, start = 0, nlines = 0; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		lines[nlines]  = buf + start;
		lens[nlines++] = i - start;
		start          = i + 1;
	}
	g->end = (off_t)start;
	// Newest first, so that a bound keeps the most recent claims.
	for (i = nlines; i-- > 0;) {
		if (max_ids > 0 && g->count == max_ids) {
			compact = true;
			break;
		}
		if ((n = guard__decode(lines[i], lens[i])) == 0)
			continue;
		lens[i] = n;
		if ((rc = guard__add(g, lines[i], n)) == MR_ENOMEM)
			goto out;
		keep[i] = rc == MR_OK;
		compact |= rc == MR_EEXIST && max_ids > 0;
		rc = MR_OK;
	}
	if (compact) {
		// Each kept id escapes to at most twice its length.
		if ((*out = malloc(2 * start + 1)) == NULL) {
			rc = MR_ENOMEM;
			goto out;
		}
		for (i = 0, *out_len = 0; i < nlines; i++)
			if (keep[i])
				*out_len += guard__encode(
				    lines[i], lens[i], *out + *out_len);
	}
out:
	free(lines);
	free(lens);
	free(keep);
	return rc;
}

static void
guard__free_set(mr_guard *g)
{
	for (size_t i = 0; i < g->cap; i++)
		free(g->slots[i].id);
	free(g->slots);
}

int
mr_guard_open_bounded(mr_guard **out, const char *path, size_t max_ids,
		      char *errstr, size_t errstr_size)
{
	mr_guard *g;
	char     *buf = NULL, *kept = NULL;
	size_t    len = 0, kept_len = 0;
	int       rc;

	if (out == NULL || path == NULL || path[0] == '\0') {
		snprintf(errstr, errstr_size, "no path for the guard");
		return MR_EINVAL;
	}
	if ((g = calloc(1, sizeof(*g))) == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return MR_ENOMEM;
	}
	g->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (g->fd < 0) {
		snprintf(errstr, errstr_size, "cannot open %s: %s", path,
			 strerror(errno));
		free(g);
		return MR_EIO;
	}
	if (flock(g->fd, LOCK_EX | LOCK_NB) != 0) {
		rc = errno == EWOULDBLOCK ? MR_EBUSY : MR_EIO;
		snprintf(errstr, errstr_size, "%s: %s", path,
			 rc == MR_EBUSY ? "in use by another process"
					: strerror(errno));
		goto fail;
	}
	if ((rc = guard__read_file(g->fd, &buf, &len)) != MR_OK) {
		snprintf(errstr, errstr_size, "cannot read %s: %s", path,
			 rc == MR_ENOMEM ? "out of memory" : strerror(errno));
		goto fail;
	}
	rc = guard__load(g, buf, len, max_ids, &kept, &kept_len);
	if (rc != MR_OK) {
		snprintf(errstr, errstr_size, "out of memory");
		goto fail;
	}
	if (kept != NULL) {
		rc = guard__compact(g, path, kept, kept_len, errstr,
				    errstr_size);
		if (rc != MR_OK)
			goto fail;
	} else if ((size_t)g->end != len &&
		   (ftruncate(g->fd, g->end) != 0 || fdatasync(g->fd) != 0)) {
		rc = MR_EIO;
		snprintf(errstr, errstr_size,
			 "cannot cut the torn end of %s: %s", path,
			 strerror(errno));
		goto fail;
	}
	// A new file must survive a crash too.
	if (len == 0 && guard__sync_dir(path) != 0) {
		rc = MR_EIO;
		snprintf(errstr, errstr_size,
			 "cannot sync the folder of %s: %s", path,
			 strerror(errno));
		goto fail;
	}
	free(buf);
	free(kept);
	pthread_mutex_init(&g->lock, NULL);
	*out = g;
	return MR_OK;
fail:
	free(buf);
	free(kept);
	close(g->fd);
	guard__free_set(g);
	free(g);
	return rc;
}

int
mr_guard_open(mr_guard **out, const char *path, char *errstr,
	      size_t errstr_size)
{
	return mr_guard_open_bounded(out, path, 0, errstr, errstr_size);
}

int
mr_guard_claim(mr_guard *g, const char *id)
{
	char   line[2 * MR_ID_MAX + 2];
	size_t len, n;
	int    rc;

	if (g == NULL || id == NULL || (len = strlen(id)) == 0 ||
	    len > MR_ID_MAX)
		return MR_EINVAL;
	pthread_mutex_lock(&g->lock);
	if (g->broken) {
		pthread_mutex_unlock(&g->lock);
		return MR_EIO;
	}
	if ((rc = guard__add(g, id, len)) != MR_OK) {
		pthread_mutex_unlock(&g->lock);
		return rc;
	}
	n = guard__encode(id, len, line);
	if (guard__write_all(g->fd, line, n, g->end) != 0 ||
	    fdatasync(g->fd) != 0) {
		// After a failed fdatasync the page cache cannot be trusted
		// to reach the disk, and the file may hold the line or part
		// of it: refuse every later claim.
		g->broken = MR_EIO;
		pthread_mutex_unlock(&g->lock);
		return MR_EIO;
	}
	g->end += (off_t)n;
	pthread_mutex_unlock(&g->lock);
	return MR_OK;
}

size_t
mr_guard_count(mr_guard *g)
{
	size_t n;

	if (g == NULL)
		return 0;
	pthread_mutex_lock(&g->lock);
	n = g->count;
	pthread_mutex_unlock(&g->lock);
	return n;
}

void
mr_guard_free(mr_guard *g)
{
	if (g == NULL)
		return;
	close(g->fd);
	guard__free_set(g);
	pthread_mutex_destroy(&g->lock);
	free(g);
}
