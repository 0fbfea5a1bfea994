#define _GNU_SOURCE /* vasprintf */

#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "mailroom/mailroom.h"

#define HARNESS__READY_MS 30000
#define HARNESS__MAX_ARGS 64

int64_t
mrt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
mrt_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int
harness__exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return -1;
}

/* ---- mailroomd -------------------------------------------------------- */

const char *
mrt_daemon_log_tail(const struct mrt_daemon *d)
{
	static char buf[4096];
	FILE       *f = fopen(d->log_path, "rb");
	long        size;
	size_t      n;

	buf[0] = '\0';
	if (f == NULL)
		return buf;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, size > (long)sizeof(buf) - 1 ? size - (long)sizeof(buf) + 1
					       : 0,
	      SEEK_SET);
	n      = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* One status call on a fresh client; NULL while mailroomd does not
 * answer. */
static json_t *
harness__status(const char *url, int timeout_ms)
{
	mr_client_opts opts = {.timeout_ms = timeout_ms};
	mr_client     *c;
	char           errstr[256];
	char          *text = NULL;
	json_t        *st   = NULL;

	if (mr_client_new(&c, url, &opts, errstr, sizeof(errstr)) != MR_OK)
		return NULL;
	if (mr_status(c, &text) == MR_OK)
		st = json_loads(text, 0, NULL);
	free(text);
	mr_client_free(c);
	return st;
}

/* Run mailroomd in d->dir (its url and log set) and wait until it
 * answers; the log is appended to, so that a restart keeps the last run's. */
static int
harness__spawn(struct mrt_daemon *d, const char *brokers,
	       const char *const *sets, char *errbuf, size_t errlen)
{
	const char *bindir = getenv("MR_BINARY_DIR");
	char        path[512];
	char       *argv[HARNESS__MAX_ARGS];
	int         argc = 0, status;
	pid_t       parent = getpid(), pid;
	int64_t     deadline;
	json_t     *st = NULL, *kafka;
	const char *bs;

	if (bindir == NULL) {
		snprintf(errbuf, errlen, "MR_BINARY_DIR is not set");
		return -1;
	}
	snprintf(path, sizeof(path), "%s/mailroomd", bindir);
	if (access(path, X_OK) != 0) {
		snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}

	// Everything the child needs is built before fork: the test process
	// has nng's and librdkafka's threads.
	argv[argc++] = path;
	argv[argc++] = "--listen";
	argv[argc++] = d->url;
	if (brokers != NULL) {
		argv[argc++] = "--brokers";
		argv[argc++] = (char *)brokers;
	}
	for (size_t i = 0; sets != NULL && sets[i] != NULL; i++) {
		if (argc + 3 >= HARNESS__MAX_ARGS) {
			snprintf(errbuf, errlen, "too many settings");
			return -1;
		}
		argv[argc++] = "--set";
		argv[argc++] = (char *)sets[i];
	}
	argv[argc] = NULL;

	if ((pid = fork()) < 0) {
		snprintf(errbuf, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int fd;

		// Die with the test, whatever way it ends.
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		fd = open(d->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		fd = open("/dev/null", O_RDONLY);
		if (fd >= 0) {
			dup2(fd, 0);
			close(fd);
		}
		execv(path, argv);
		_exit(127);
	}
	d->pid = pid;

	deadline = mrt_now_ms() + HARNESS__READY_MS;
	while (mrt_now_ms() < deadline) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			d->pid = 0;
			snprintf(errbuf, errlen,
				 "mailroomd exited with %d before it was "
				 "ready; its log:\n%s",
				 harness__exit_code(status),
				 mrt_daemon_log_tail(d));
			return -1;
		}
		if ((st = harness__status(d->url, 2000)) != NULL)
			break;
		mrt_sleep_ms(50);
	}
	if (st == NULL) {
		snprintf(errbuf, errlen,
			 "mailroomd did not answer status within %d ms; its "
			 "log:\n%s",
			 HARNESS__READY_MS, mrt_daemon_log_tail(d));
		mrt_daemon_kill(d);
		return -1;
	}
	kafka = json_object_get(st, "kafka");
	bs    = json_string_value(json_object_get(kafka, "bootstrap"));
	snprintf(d->bootstrap, sizeof(d->bootstrap), "%s", bs ? bs : "");
	d->embedded = json_is_true(json_object_get(kafka, "embedded"));
	json_decref(st);
	if (d->bootstrap[0] == '\0') {
		snprintf(errbuf, errlen, "status has no kafka.bootstrap");
		mrt_daemon_kill(d);
		return -1;
	}
	return 0;
}

int
mrt_daemon_start(struct mrt_daemon *d, const char *brokers,
		 const char *const *sets, char *errbuf, size_t errlen)
{
	const char *tmp = getenv("TMPDIR");

	memset(d, 0, sizeof(*d));
	snprintf(d->dir, sizeof(d->dir), "%s/mailroom-it-XXXXXX",
		 tmp && tmp[0] ? tmp : "/tmp");
	if (mkdtemp(d->dir) == NULL) {
		snprintf(errbuf, errlen, "mkdtemp: %s", strerror(errno));
		d->dir[0] = '\0';
		return -1;
	}
	snprintf(d->url, sizeof(d->url), "ipc://%s/mailroomd.sock", d->dir);
	snprintf(d->log_path, sizeof(d->log_path), "%s/mailroomd.log", d->dir);
	return harness__spawn(d, brokers, sets, errbuf, errlen);
}

int
mrt_daemon_restart(struct mrt_daemon *d, const char *brokers,
		   const char *const *sets, char *errbuf, size_t errlen)
{
	if (d->pid > 0 || d->dir[0] == '\0') {
		snprintf(errbuf, errlen, "%s",
			 d->pid > 0 ? "mailroomd is still running"
				    : "mailroomd was never started");
		return -1;
	}
	return harness__spawn(d, brokers, sets, errbuf, errlen);
}

int
mrt_daemon_signal(struct mrt_daemon *d, int sig)
{
	if (d->pid <= 0)
		return -1;
	return kill(d->pid, sig);
}

int
mrt_daemon_wait(struct mrt_daemon *d, int timeout_ms)
{
	int64_t deadline = mrt_now_ms() + timeout_ms;
	int     status;

	if (d->pid <= 0)
		return -1;
	for (;;) {
		pid_t r = waitpid(d->pid, &status, WNOHANG);

		if (r == d->pid) {
			d->pid = 0;
			return harness__exit_code(status);
		}
		if (r < 0 && errno != EINTR) {
			d->pid = 0;
			return -1;
		}
		if (mrt_now_ms() >= deadline)
			return -1;
		mrt_sleep_ms(20);
	}
}

void
mrt_daemon_kill(struct mrt_daemon *d)
{
	if (d->pid <= 0)
		return;
	kill(d->pid, SIGKILL);
	while (waitpid(d->pid, NULL, 0) < 0 && errno == EINTR)
		;
	d->pid = 0;
}

int
mrt_daemon_stop(struct mrt_daemon *d, int timeout_ms)
{
	int rc;

	if (d->pid <= 0)
		return -1;
	kill(d->pid, SIGTERM);
	if ((rc = mrt_daemon_wait(d, timeout_ms)) >= 0 || d->pid == 0)
		return rc;
	fprintf(stderr,
		"harness: mailroomd %d did not stop within %d ms of SIGTERM; "
		"SIGKILL\n",
		(int)d->pid, timeout_ms);
	mrt_daemon_kill(d);
	return -1;
}

void
mrt_daemon_cleanup(struct mrt_daemon *d)
{
	mrt_daemon_kill(d);
	if (d->dir[0] != '\0') {
		unlink(d->log_path);
		rmdir(d->dir);
		// The socket, and anything else left, go with the directory.
		mrt_sh("rm -rf '%s'", d->dir);
		d->dir[0] = '\0';
	}
}

json_t *
mrt_daemon_status(const struct mrt_daemon *d)
{
	return harness__status(d->url, 10000);
}

json_t *
mrt_daemon_admin(const struct mrt_daemon *d, const char *request)
{
	mr_client_opts opts = {.timeout_ms = 30000};
	mr_client     *c;
	char           errstr[256];
	char          *text = NULL;
	json_t        *rep  = NULL;

	if (mr_client_new(&c, d->url, &opts, errstr, sizeof(errstr)) != MR_OK)
		return NULL;
	if (mr_admin(c, request, &text) == MR_OK)
		rep = json_loads(text, 0, NULL);
	free(text);
	mr_client_free(c);
	return rep;
}

/* ---- the fixture's Kafka ---------------------------------------------- */

static int
harness__read_file(const char *path, char *out, size_t outlen)
{
	FILE  *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return -1;
	n      = fread(out, 1, outlen - 1, f);
	out[n] = '\0';
	fclose(f);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' ||
			 out[n - 1] == ' '))
		out[--n] = '\0';
	return 0;
}

int
mrt_kafka_bootstrap(char *out, size_t outlen, char *reason,
		    size_t reasonlen)
{
	const char *on  = getenv("MR_KAFKA");
	const char *dir = getenv("MR_KAFKA_DIR");
	char        path[1024];

	if (on == NULL || on[0] == '\0' || strcmp(on, "0") == 0)
		return 0;
	if (dir == NULL || dir[0] == '\0') {
		snprintf(reason, reasonlen, "MR_KAFKA is set but MR_KAFKA_DIR "
					    "is not");
		return -1;
	}
	snprintf(path, sizeof(path), "%s/unavailable", dir);
	if (harness__read_file(path, reason, reasonlen) == 0)
		return 77;
	snprintf(path, sizeof(path), "%s/bootstrap", dir);
	if (harness__read_file(path, out, outlen) != 0 || out[0] == '\0') {
		snprintf(reason, reasonlen,
			 "%s missing: did the kafka_start fixture run?", path);
		return -1;
	}
	return 1;
}

/* ---- the Kafka reader ------------------------------------------------- */

static void
harness__quiet_log(const rd_kafka_t *rk, int level, const char *fac,
		   const char *buf)
{
}

static int
harness__record_add(struct mrt_records *rs, size_t *cap,
		    const rd_kafka_message_t *m)
{
	struct mrt_record  *r;
	rd_kafka_headers_t *hs = NULL;

	if (rs->n == *cap) {
		size_t             nc = *cap ? *cap * 2 : 256;
		struct mrt_record *nv = realloc(rs->v, nc * sizeof(*nv));
		if (nv == NULL)
			return -1;
		rs->v = nv;
		*cap  = nc;
	}
	r = &rs->v[rs->n];
	memset(r, 0, sizeof(*r));
	r->partition   = m->partition;
	r->offset      = m->offset;
	r->has_key     = m->key != NULL;
	r->key_len     = m->key_len;
	r->key         = malloc(m->key_len + 1);
	r->has_payload = m->payload != NULL;
	r->payload_len = m->len;
	r->payload     = malloc(m->len + 1);
	if (r->key == NULL || r->payload == NULL)
		return -1;
	if (m->key_len)
		memcpy(r->key, m->key, m->key_len);
	((char *)r->key)[m->key_len] = '\0';
	if (m->len)
		memcpy(r->payload, m->payload, m->len);
	((char *)r->payload)[m->len] = '\0';
	if (rd_kafka_message_headers(m, &hs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		size_t cnt = rd_kafka_header_cnt(hs);

		r->hdrs = calloc(cnt ? cnt : 1, sizeof(*r->hdrs));
		if (r->hdrs == NULL)
			return -1;
		for (size_t i = 0; i < cnt; i++) {
			const char *name;
			const void *val;
			size_t      size;

			if (rd_kafka_header_get_all(hs, i, &name, &val,
						    &size) != 0)
				break;
			r->hdrs[i].name      = strdup(name);
			r->hdrs[i].value_len = size;
			if (val != NULL) {
				r->hdrs[i].value = malloc(size + 1);
				if (r->hdrs[i].value == NULL)
					return -1;
				memcpy(r->hdrs[i].value, val, size);
				((char *)r->hdrs[i].value)[size] = '\0';
			}
			r->hdr_count++;
		}
	}
	rs->n++;
	return 0;
}

int
mrt_kafka_read(const char *bootstrap, const char *topic, size_t want,
	       int timeout_ms, struct mrt_records *out, char *errbuf,
	       size_t errlen)
{
	static int                      seq;
	rd_kafka_conf_t                *conf = rd_kafka_conf_new();
	rd_kafka_t                     *rk;
	rd_kafka_topic_t               *rkt;
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_partition_list_t *parts;
	int64_t                         deadline = mrt_now_ms() + timeout_ms;
	char                            group[64], es[512];
	bool                           *eof = NULL;
	size_t                          cap = 0;
	int                             nparts = 0, rc = -1;

	memset(out, 0, sizeof(*out));
	snprintf(group, sizeof(group), "mrt-reader-%d-%d", (int)getpid(),
		 seq++);
#define HARNESS__SET(k, v)                                                    \
	if (rd_kafka_conf_set(conf, k, v, es, sizeof(es)) !=                  \
	    RD_KAFKA_CONF_OK) {                                               \
		snprintf(errbuf, errlen, "%s: %s", k, es);                    \
		rd_kafka_conf_destroy(conf);                                  \
		return -1;                                                    \
	}
	HARNESS__SET("bootstrap.servers", bootstrap);
	HARNESS__SET("group.id", group);
	HARNESS__SET("client.id", "mailroom-test-reader");
	HARNESS__SET("enable.auto.commit", "false");
	HARNESS__SET("enable.auto.offset.store", "false");
	HARNESS__SET("enable.partition.eof", "true");
	HARNESS__SET("auto.offset.reset", "earliest");
	HARNESS__SET("max.partition.fetch.bytes", "16777216");
	HARNESS__SET("fetch.max.bytes", "52428800");
	HARNESS__SET("topic.metadata.refresh.interval.ms", "1000");
#undef HARNESS__SET
	rd_kafka_conf_set_log_cb(conf, harness__quiet_log);
	if ((rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, es, sizeof(es))) ==
	    NULL) {
		snprintf(errbuf, errlen, "rd_kafka_new: %s", es);
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	rkt = rd_kafka_topic_new(rk, topic, NULL);

	// The topic's partitions, once its metadata has settled.
	while (mrt_now_ms() < deadline) {
		rd_kafka_resp_err_t err;

		err = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
		if (err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 &&
		    md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
		    md->topics[0].partition_cnt > 0) {
			nparts = md->topics[0].partition_cnt;
			rd_kafka_metadata_destroy(md);
			break;
		}
		if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
			rd_kafka_metadata_destroy(md);
		mrt_sleep_ms(200);
	}
	rd_kafka_topic_destroy(rkt);
	if (nparts == 0) {
		snprintf(errbuf, errlen, "no metadata for topic '%s' at %s",
			 topic, bootstrap);
		goto out;
	}
	out->partitions = nparts;
	eof             = calloc((size_t)nparts, sizeof(*eof));
	parts           = rd_kafka_topic_partition_list_new(nparts);
	for (int p = 0; p < nparts; p++)
		rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
		    RD_KAFKA_OFFSET_BEGINNING;
	if (rd_kafka_assign(rk, parts) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		rd_kafka_topic_partition_list_destroy(parts);
		snprintf(errbuf, errlen, "assign failed");
		goto out;
	}
	rd_kafka_topic_partition_list_destroy(parts);

	while (mrt_now_ms() < deadline) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		bool                all_eof = true;

		if (m != NULL) {
			if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
				if (m->partition >= 0 && m->partition < nparts)
					eof[m->partition] = true;
			} else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
				if (m->partition >= 0 && m->partition < nparts)
					eof[m->partition] = false;
				if (harness__record_add(out, &cap, m) != 0) {
					rd_kafka_message_destroy(m);
					snprintf(errbuf, errlen,
						 "out of memory");
					goto out;
				}
			}
			// Other errors are transient (a broker restarting):
			// the consumer goes on by itself.
			rd_kafka_message_destroy(m);
		}
		for (int p = 0; p < nparts && all_eof; p++)
			all_eof = eof[p];
		if (all_eof && out->n >= want)
			break;
	}
	rc = 0;
out:
	free(eof);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	if (rc != 0)
		mrt_records_free(out);
	return rc;
}

void
mrt_records_free(struct mrt_records *rs)
{
	for (size_t i = 0; rs->v != NULL && i < rs->n; i++) {
		struct mrt_record *r = &rs->v[i];

		for (size_t h = 0; h < r->hdr_count; h++) {
			free(r->hdrs[h].name);
			free(r->hdrs[h].value);
		}
		free(r->hdrs);
		free(r->key);
		free(r->payload);
	}
	free(rs->v);
	memset(rs, 0, sizeof(*rs));
}

const struct mrt_header *
mrt_record_header(const struct mrt_record *r, const char *name)
{
	for (size_t i = 0; i < r->hdr_count; i++)
		if (strcmp(r->hdrs[i].name, name) == 0)
			return &r->hdrs[i];
	return NULL;
}

bool
mrt_record_header_is(const struct mrt_record *r, const char *name,
		     const char *s)
{
	const struct mrt_header *h = mrt_record_header(r, name);

	return h != NULL && h->value != NULL && h->value_len == strlen(s) &&
	       memcmp(h->value, s, h->value_len) == 0;
}

const struct mrt_record *
mrt_records_find_id(const struct mrt_records *rs, const char *id)
{
	for (size_t i = 0; i < rs->n; i++)
		if (mrt_record_header_is(&rs->v[i], "ce_id", id))
			return &rs->v[i];
	return NULL;
}

size_t
mrt_records_count_id(const struct mrt_records *rs, const char *id)
{
	size_t n = 0;

	for (size_t i = 0; i < rs->n; i++)
		n += mrt_record_header_is(&rs->v[i], "ce_id", id);
	return n;
}

/* ---- shell ------------------------------------------------------------- */

int
mrt_sh(const char *fmt, ...)
{
	char   *cmd;
	va_list ap;
	int     st;

	va_start(ap, fmt);
	if (vasprintf(&cmd, fmt, ap) < 0) {
		va_end(ap);
		return -1;
	}
	va_end(ap);
	fflush(NULL);
	st = system(cmd);
	free(cmd);
	return st < 0 ? -1 : harness__exit_code(st);
}

int
mrt_sh_output(char **out, size_t *len, const char *fmt, ...)
{
	char   *cmd, *buf = NULL;
	size_t  n = 0, cap = 0, r;
	va_list ap;
	FILE   *p;
	int     st;

	*out = NULL;
	*len = 0;
	va_start(ap, fmt);
	if (vasprintf(&cmd, fmt, ap) < 0) {
		va_end(ap);
		return -1;
	}
	va_end(ap);
	fflush(NULL);
	p = popen(cmd, "r");
	free(cmd);
	if (p == NULL)
		return -1;
	do {
		if (cap - n < 4096) {
			char *nb = realloc(buf, cap ? cap * 2 : 8192);
			if (nb == NULL)
				break;
			buf = nb;
			cap = cap ? cap * 2 : 8192;
		}
		r  = fread(buf + n, 1, cap - n - 1, p);
		n += r;
	} while (r > 0);
	st = pclose(p);
	if (buf == NULL)
		buf = calloc(1, 1);
	else
		buf[n] = '\0';
	*out = buf;
	*len = n;
	return st < 0 ? -1 : harness__exit_code(st);
}

/* ---- the id index ------------------------------------------------------ */

static int
harness__id_cmp(const void *a, const void *b)
{
	return strcmp(((const struct mrt_id_entry *)a)->id,
		      ((const struct mrt_id_entry *)b)->id);
}

int
mrt_id_index_build(const struct mrt_records *rs, struct mrt_id_index *ix)
{
	ix->n = 0;
	ix->v = calloc(rs->n ? rs->n : 1, sizeof(*ix->v));
	if (ix->v == NULL)
		return -1;
	for (size_t i = 0; i < rs->n; i++) {
		const struct mrt_header *h = mrt_record_header(&rs->v[i], "ce_id");

		if (h == NULL || h->value == NULL)
			continue;
		ix->v[ix->n].id  = h->value;
		ix->v[ix->n++].r = &rs->v[i];
	}
	qsort(ix->v, ix->n, sizeof(*ix->v), harness__id_cmp);
	return 0;
}

size_t
mrt_id_index_find(const struct mrt_id_index *ix, const char *id, size_t *pos)
{
	size_t lo = 0, hi = ix->n, n = 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(ix->v[mid].id, id) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos = lo;
	for (size_t i = lo; i < ix->n && strcmp(ix->v[i].id, id) == 0; i++)
		n++;
	return n;
}

void
mrt_id_index_free(struct mrt_id_index *ix)
{
	free(ix->v);
	ix->v = NULL;
	ix->n = 0;
}
