/*
 * http_bench: mailroomd's HTTP publish path (docs/HTTP.md, "Publishing";
 * docs/benchmarks/http.md).
 *
 * N messages of S bytes in JSON batches of B (`POST /v1/topics/{topic}/
 * messages` with `{"messages":[{"key":"k<i % 1000>","value":"..."}]}`),
 * over C keep-alive HTTP/1.1 connections; each connection sends its next
 * request when the answer to its last one came. POSIX sockets and poll,
 * one thread. Every answer must be 200 with "failed" 0 and one ack per
 * message; the first that is not stops the run (exit 1) and is printed.
 *
 * Reports messages and requests per second, each request's latency (its
 * first byte sent to its answer's last byte received) at p50 and p99, and
 * the CPU microseconds per message of this process and, with --pid, of
 * mailroomd (utime + stime of /proc/<pid>/stat). Each connection sends
 * one warm-up request before the clock starts. Values are S characters of
 * [A-Za-z0-9_-] (random, drawn from common.c's pool), so that they need no
 * JSON escape. The last line is one JSON object with every figure.
 */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common.h"

#define HB_KEYS 1000
#define HB_CONNS_MAX 64
#define HB_HEAD_MAX 16384 /* an answer's status line and headers */

struct hb_opts {
	const char *host;
	const char *port;
	const char *topic;
	const char *token;
	long        count;
	size_t      size;
	int         batch;
	int         conns;
	int         pid; /* mailroomd's, 0: not measured */
	int         timeout_ms;
};

struct hb_buf {
	char  *p;
	size_t len, cap;
};

struct hb_conn {
	int           fd;
	struct hb_buf head, body; /* the request */
	size_t        sent;       /* bytes of head + body written */
	struct hb_buf in;         /* bytes read, not yet consumed */
	long          first;      /* the request's first message */
	int           k;          /* its messages */
	int64_t       t_send;     /* its first byte's time */
	bool          busy;
	bool          warmup;
};

struct hb_run {
	long    next;   /* the next message to send */
	long    reqs;   /* answered requests (warm-ups excluded) */
	long    msgs;   /* messages acked */
	long    acks;   /* ack objects counted in the answers */
	long    reconnects;
	double *lat;    /* ms, per request */
	long    nlat;
	bool    failed; /* an answer was wrong: stop */
};

static const char hb__alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

/* ---- buffers ---------------------------------------------------------- */

static void
hb__reserve(struct hb_buf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 4096;
	char  *p;

	if (b->len + more <= b->cap)
		return;
	while (cap < b->len + more)
		cap *= 2;
	if ((p = realloc(b->p, cap)) == NULL) {
		fprintf(stderr, "http_bench: out of memory\n");
		exit(1);
	}
	b->p   = p;
	b->cap = cap;
}

static void
hb__put(struct hb_buf *b, const char *s, size_t n)
{
	hb__reserve(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

/* ---- requests --------------------------------------------------------- */

/* The JSON body of messages [first, first + k) into c->body, its request
 * line and headers into c->head. */
static void
hb__build(const struct hb_opts *o, struct hb_conn *c, long first, int k)
{
	char   tmp[64];
	size_t n;

	c->body.len = 0;
	hb__put(&c->body, "{\"messages\":[", 13);
	for (int j = 0; j < k; j++) {
		long           i = first + j;
		const uint8_t *v = bench_payload(i);
		char          *d;

		n = (size_t)snprintf(tmp, sizeof(tmp),
				     "%s{\"key\":\"k%ld\",\"value\":\"",
				     j ? "," : "", i % HB_KEYS);
		hb__put(&c->body, tmp, n);
		hb__reserve(&c->body, o->size + 2);
		d = c->body.p + c->body.len;
		for (size_t x = 0; x < o->size; x++)
			d[x] = hb__alphabet[v[x] & 63];
		c->body.len += o->size;
		hb__put(&c->body, "\"}", 2);
	}
	hb__put(&c->body, "]}", 2);

	c->head.len = 0;
	hb__reserve(&c->head, 512 + strlen(o->topic) + strlen(o->token));
	c->head.len = (size_t)snprintf(
	    c->head.p, c->head.cap,
	    "POST /v1/topics/%s/messages HTTP/1.1\r\n"
	    "Host: %s:%s\r\n"
	    "Authorization: Bearer %s\r\n"
	    "Content-Type: application/json\r\n"
	    "Content-Length: %zu\r\n"
	    "\r\n",
	    o->topic, o->host, o->port, o->token, c->body.len);
	c->first = first;
	c->k     = k;
	c->sent  = 0;
	c->busy  = true;
}

static int
hb__connect(const struct hb_opts *o)
{
	struct addrinfo hints = {.ai_family   = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM},
			*ai;
	int fd = -1, one = 1, rc;

	if ((rc = getaddrinfo(o->host, o->port, &hints, &ai)) != 0) {
		fprintf(stderr, "http_bench: %s:%s: %s\n", o->host, o->port,
			gai_strerror(rc));
		return -1;
	}
	for (struct addrinfo *a = ai; a != NULL; a = a->ai_next) {
		if ((fd = socket(a->ai_family, a->ai_socktype, 0)) < 0)
			continue;
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0) {
		fprintf(stderr, "http_bench: connect %s:%s: %s\n", o->host,
			o->port, strerror(errno));
		return -1;
	}
	// Requests go out whole: do not let Nagle hold the body back.
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

/* Write what the socket takes of the request. @returns -1 on error. */
static int
hb__send(struct hb_conn *c)
{
	while (c->sent < c->head.len + c->body.len) {
		struct iovec iov[2];
		int          n = 0;
		ssize_t      w;

		if (c->sent < c->head.len) {
			iov[n].iov_base = c->head.p + c->sent;
			iov[n++].iov_len = c->head.len - c->sent;
			iov[n].iov_base  = c->body.p;
			iov[n++].iov_len = c->body.len;
		} else {
			iov[n].iov_base = c->body.p + (c->sent - c->head.len);
			iov[n++].iov_len = c->head.len + c->body.len - c->sent;
		}
		w = writev(c->fd, iov, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (w < 0) {
			fprintf(stderr, "http_bench: send: %s\n",
				strerror(errno));
			return -1;
		}
		c->sent += (size_t)w;
	}
	return 0;
}

/* ---- answers ---------------------------------------------------------- */

/* The integer after "name": in a JSON text (whitespace allowed), or -1. */
static long
hb__json_int(const char *s, size_t n, const char *name)
{
	size_t      nl = strlen(name);
	const char *p  = s, *end = s + n;

	while ((p = memmem(p, (size_t)(end - p), name, nl)) != NULL) {
		const char *q = p + nl;

		p = q;
		while (q < end && (*q == ' ' || *q == '\t' || *q == '\n'))
			q++;
		if (q >= end || *q != ':')
			continue;
		q++;
		while (q < end && (*q == ' ' || *q == '\t' || *q == '\n'))
			q++;
		if (q < end && *q >= '0' && *q <= '9')
			return strtol(q, NULL, 10);
		return -1;
	}
	return -1;
}

static long
hb__count(const char *s, size_t n, const char *what)
{
	size_t      wl = strlen(what);
	const char *p  = s, *end = s + n;
	long        k  = 0;

	while ((p = memmem(p, (size_t)(end - p), what, wl)) != NULL) {
		k++;
		p += wl;
	}
	return k;
}

/*
 * One answer from c->in if it is all there. @returns 1 when one was taken
 * (*status, *body and *blen set; the body borrows c->in until the next
 * call), 0 when more bytes are needed, -1 when it cannot be parsed.
 */
static int
hb__answer(struct hb_conn *c, int *status, const char **body, size_t *blen,
	   bool *close_after)
{
	const char *p = c->in.p, *eoh, *line, *end;
	size_t      hlen;
	long        clen = -1;

	if (c->in.len == 0)
		return 0;
	eoh = memmem(p, c->in.len, "\r\n\r\n", 4);
	if (eoh == NULL)
		return c->in.len > HB_HEAD_MAX ? -1 : 0;
	hlen = (size_t)(eoh - p) + 4;
	if (c->in.len < 12 || strncmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ')
		return -1;
	*status      = atoi(p + 9);
	*close_after = p[7] == '0';
	line         = memmem(p, hlen, "\r\n", 2) + 2;
	while (line < eoh) {
		end = memmem(line, (size_t)(eoh + 2 - line), "\r\n", 2);
		if (strncasecmp(line, "Content-Length:", 15) == 0)
			clen = strtol(line + 15, NULL, 10);
		else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0)
			return -1; // mailroomd gives Content-Length
		else if (strncasecmp(line, "Connection:", 11) == 0) {
			const char *v = line + 11;

			while (*v == ' ')
				v++;
			if (strncasecmp(v, "close", 5) == 0)
				*close_after = true;
		}
		line = end + 2;
	}
	if (clen < 0)
		return -1;
	if (c->in.len < hlen + (size_t)clen)
		return 0;
	*body = p + hlen;
	*blen = (size_t)clen;
	return 1;
}

static void
hb__consume(struct hb_conn *c, size_t n)
{
	memmove(c->in.p, c->in.p + n, c->in.len - n);
	c->in.len -= n;
}

/* Check an answer of c's request; false (and why, printed) when wrong. */
static bool
hb__check(struct hb_conn *c, int status, const char *body, size_t blen,
	  struct hb_run *r)
{
	long failed    = hb__json_int(body, blen, "\"failed\"");
	long published = hb__json_int(body, blen, "\"published\"");
	long acks      = hb__count(body, blen, "\"offset\"");

	if (status == 200 && failed == 0 && published == c->k &&
	    acks == c->k) {
		if (!c->warmup) {
			r->msgs += published;
			r->acks += acks;
		}
		return true;
	}
	fprintf(stderr,
		"http_bench: request of messages %ld..%ld (%d): status %d, "
		"published %ld, failed %ld, %ld acks; body (%zu bytes): "
		"%.*s\n",
		c->first, c->first + c->k - 1, c->k, status, published,
		failed, acks, blen, (int)(blen > 600 ? 600 : blen), body);
	return false;
}

/* ---- the run ---------------------------------------------------------- */

/* The next request of c, or none when every message went out. */
static void
hb__next(const struct hb_opts *o, struct hb_conn *c, struct hb_run *r)
{
	long k = o->count - r->next < o->batch ? o->count - r->next
					       : o->batch;

	c->warmup = false;
	c->busy   = false;
	if (k <= 0 || r->failed)
		return;
	hb__build(o, c, r->next, (int)k);
	r->next += k;
	c->t_send = bench_now_ns();
}

/* Read what c's socket has; take every whole answer. @returns -1 when the
 * run must stop. */
static int
hb__recv(const struct hb_opts *o, struct hb_conn *c, struct hb_run *r)
{
	for (;;) {
		ssize_t     n;
		int         status, rc;
		const char *body;
		size_t      blen;
		bool        close_after;

		hb__reserve(&c->in, 65536);
		n = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0) {
			fprintf(stderr,
				"http_bench: the connection %s %s (request "
				"of messages %ld.., %zu of %zu bytes sent, "
				"%zu bytes of its answer read)\n",
				n == 0 ? "was closed by" : "failed:",
				n == 0 ? "mailroomd" : strerror(errno),
				c->first, c->sent, c->head.len + c->body.len,
				c->in.len);
			return -1;
		}
		c->in.len += (size_t)n;
		while ((rc = hb__answer(c, &status, &body, &blen,
					&close_after)) == 1) {
			int64_t now = bench_now_ns();

			if (!c->busy || c->sent < c->head.len + c->body.len) {
				fprintf(stderr,
					"http_bench: an answer (status %d) "
					"came before the request was sent\n",
					status);
				return -1;
			}
			if (!hb__check(c, status, body, blen, r)) {
				r->failed = true;
				return -1;
			}
			if (!c->warmup) {
				r->lat[r->nlat++] =
				    (double)(now - c->t_send) / 1e6;
				r->reqs++;
			}
			hb__consume(c, (size_t)(body - c->in.p) + blen);
			if (close_after) {
				// mailroomd ended the keep-alive: count it.
				close(c->fd);
				if ((c->fd = hb__connect(o)) < 0)
					return -1;
				r->reconnects++;
				c->in.len = 0;
			}
			if (c->warmup) {
				// main starts the timed requests.
				c->warmup = false;
				c->busy   = false;
				continue;
			}
			hb__next(o, c, r);
			if (c->busy && hb__send(c) < 0)
				return -1;
		}
		if (rc < 0) {
			fprintf(stderr,
				"http_bench: an answer that is not HTTP/1.x "
				"with Content-Length: %.*s\n",
				(int)(c->in.len > 300 ? 300 : c->in.len),
				c->in.p);
			return -1;
		}
	}
}

/* Until every connection is idle. @returns -1 on error or a hang. */
static int
hb__loop(const struct hb_opts *o, struct hb_conn *cs, struct hb_run *r)
{
	struct pollfd pf[HB_CONNS_MAX];

	for (;;) {
		int n = 0, rc;

		for (int i = 0; i < o->conns; i++) {
			pf[i].fd     = cs[i].fd;
			pf[i].events = POLLIN;
			if (cs[i].busy &&
			    cs[i].sent < cs[i].head.len + cs[i].body.len)
				pf[i].events |= POLLOUT;
			pf[i].revents = 0;
			n += cs[i].busy;
		}
		if (n == 0)
			return 0;
		rc = poll(pf, (nfds_t)o->conns, o->timeout_ms);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0) {
			fprintf(stderr,
				"http_bench: no answer in %d ms: %s\n",
				o->timeout_ms,
				rc < 0 ? strerror(errno) : "a hang");
			for (int i = 0; i < o->conns; i++)
				if (cs[i].busy)
					fprintf(stderr,
						"  connection %d: request "
						"of messages %ld..%ld, %zu "
						"of %zu bytes sent, %zu "
						"bytes of its answer read\n",
						i, cs[i].first,
						cs[i].first + cs[i].k - 1,
						cs[i].sent,
						cs[i].head.len +
						    cs[i].body.len,
						cs[i].in.len);
			return -1;
		}
		for (int i = 0; i < o->conns; i++) {
			if ((pf[i].revents & POLLOUT) && hb__send(&cs[i]) < 0)
				return -1;
			if ((pf[i].revents & (POLLIN | POLLHUP | POLLERR)) &&
			    hb__recv(o, &cs[i], r) < 0)
				return -1;
		}
	}
}

/* ---- main ------------------------------------------------------------- */

static void
hb__usage(FILE *f)
{
	fprintf(f,
		"usage: http_bench --url http://HOST:PORT --topic T "
		"(--token TOKEN | --token-file F) [options]\n"
		"  --count N        messages (200000)\n"
		"  --size S         value bytes (100)\n"
		"  --batch B        messages per request (100)\n"
		"  --conns C        connections, one request in flight "
		"each (1)\n"
		"  --pid P          mailroomd's pid: its CPU per message\n"
		"  --timeout-ms T   an answer's wait before the run stops "
		"(60000)\n");
}

static char *
hb__read_token(const char *file)
{
	static char tok[1024];
	FILE       *f = fopen(file, "r");

	if (f == NULL || fgets(tok, sizeof(tok), f) == NULL) {
		fprintf(stderr, "http_bench: cannot read %s\n", file);
		if (f != NULL)
			fclose(f);
		return NULL;
	}
	fclose(f);
	tok[strcspn(tok, "\r\n")] = 0;
	return tok;
}

static int
hb__parse(int argc, char **argv, struct hb_opts *o)
{
	static const struct option lopts[] = {
	    {"url", required_argument, NULL, 'u'},
	    {"topic", required_argument, NULL, 't'},
	    {"token", required_argument, NULL, 'T'},
	    {"token-file", required_argument, NULL, 'F'},
	    {"count", required_argument, NULL, 'n'},
	    {"size", required_argument, NULL, 's'},
	    {"batch", required_argument, NULL, 'k'},
	    {"conns", required_argument, NULL, 'c'},
	    {"pid", required_argument, NULL, 'p'},
	    {"timeout-ms", required_argument, NULL, 'W'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	static char hostport[256];
	char       *colon;
	int         c;

	*o = (struct hb_opts){.count      = 200000,
			      .size       = 100,
			      .batch      = 100,
			      .conns      = 1,
			      .timeout_ms = 60000};
	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (c) {
		case 'u':
			if (strncmp(optarg, "http://", 7) != 0)
				return -1;
			snprintf(hostport, sizeof(hostport), "%s", optarg + 7);
			hostport[strcspn(hostport, "/")] = 0;
			if ((colon = strrchr(hostport, ':')) == NULL)
				return -1;
			*colon  = 0;
			o->host = hostport;
			o->port = colon + 1;
			break;
		case 't':
			o->topic = optarg;
			break;
		case 'T':
			o->token = optarg;
			break;
		case 'F':
			if ((o->token = hb__read_token(optarg)) == NULL)
				return -1;
			break;
		case 'n':
			o->count = atol(optarg);
			break;
		case 's':
			o->size = (size_t)atol(optarg);
			break;
		case 'k':
			o->batch = atoi(optarg);
			break;
		case 'c':
			o->conns = atoi(optarg);
			break;
		case 'p':
			o->pid = atoi(optarg);
			break;
		case 'W':
			o->timeout_ms = atoi(optarg);
			break;
		case 'h':
			hb__usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	if (optind < argc || o->host == NULL || o->topic == NULL ||
	    o->token == NULL || o->count < 1 || o->batch < 1 ||
	    o->batch > 100000 || o->conns < 1 || o->conns > HB_CONNS_MAX ||
	    o->timeout_ms < 1 || o->size > 1024 * 1024)
		return -1;
	return 0;
}

int
main(int argc, char **argv)
{
	struct hb_opts o;
	struct hb_conn cs[HB_CONNS_MAX];
	struct hb_run  r;
	double         c0, m0 = -1, m1 = -1, cpu, mcpu = -1, secs;
	double         p50, p99;
	int64_t        t0;
	long           nreq;
	int            rc = 0;

	if (hb__parse(argc, argv, &o) != 0) {
		hb__usage(stderr);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	bench_pool_init(o.size, "http_bench");
	nreq = (o.count + o.batch - 1) / o.batch;
	memset(&r, 0, sizeof(r));
	memset(cs, 0, sizeof(cs));
	if ((r.lat = calloc((size_t)nreq, sizeof(*r.lat))) == NULL)
		return 1;

	// Connect, and one warm-up request per connection (messages 0 ..
	// B-1 again: keys and values as the run's), outside the clock.
	for (int i = 0; i < o.conns; i++) {
		if ((cs[i].fd = hb__connect(&o)) < 0)
			return 1;
		hb__build(&o, &cs[i], 0, o.count < o.batch ? (int)o.count
							   : o.batch);
		cs[i].warmup = true;
		if (hb__send(&cs[i]) < 0)
			return 1;
	}
	if (hb__loop(&o, cs, &r) != 0) {
		fprintf(stderr, "http_bench: the warm-up failed\n");
		return 1;
	}

	if (o.pid > 0)
		m0 = bench_proc_cpu(o.pid);
	c0 = bench_cpu_secs();
	t0 = bench_now_ns();
	for (int i = 0; i < o.conns; i++) {
		hb__next(&o, &cs[i], &r);
		if (cs[i].busy && hb__send(&cs[i]) < 0)
			return 1;
	}
	if (hb__loop(&o, cs, &r) != 0)
		rc = 1;
	secs = (double)(bench_now_ns() - t0) / 1e9;
	cpu  = bench_cpu_secs() - c0;
	if (o.pid > 0)
		m1 = bench_proc_cpu(o.pid);
	if (m0 >= 0 && m1 >= 0)
		mcpu = m1 - m0;
	if (r.msgs < o.count)
		rc = 1;

	qsort(r.lat, (size_t)r.nlat, sizeof(*r.lat), bench_cmp_double);
	p50 = bench_pct(r.lat, r.nlat, 0.50);
	p99 = bench_pct(r.lat, r.nlat, 0.99);
	printf("http_bench: %s:%s topic %s, %zu-byte values, batch %d, "
	       "%d connection%s\n",
	       o.host, o.port, o.topic, o.size, o.batch, o.conns,
	       o.conns > 1 ? "s" : "");
	printf("%ld of %ld messages acked (%ld acks) in %ld requests, "
	       "%.3f s: %.0f msgs/s, %.0f req/s; latency per request p50 "
	       "%.3f ms, p99 %.3f ms; cpu us/msg: http_bench %.2f, "
	       "mailroomd %.2f%s\n",
	       r.msgs, o.count, r.acks, r.reqs, secs, r.msgs / secs,
	       r.reqs / secs, p50, p99, cpu * 1e6 / (double)o.count,
	       mcpu * 1e6 / (double)o.count,
	       r.reconnects ? " (mailroomd closed connections)" : "");
	printf("{\"bench\":\"http_publish\",\"size\":%zu,\"count\":%ld,"
	       "\"batch\":%d,\"conns\":%d,\"acked\":%ld,\"acks\":%ld,"
	       "\"requests\":%ld,\"reconnects\":%ld,\"secs\":%.4f,"
	       "\"msgs_per_s\":%.1f,\"reqs_per_s\":%.1f,\"p50_ms\":%.4f,"
	       "\"p99_ms\":%.4f,\"cpu_us_per_msg\":%.3f,"
	       "\"mailroomd_cpu_us_per_msg\":%.3f,\"cpu_total_s\":%.2f,"
	       "\"ok\":%s}\n",
	       o.size, o.count, o.batch, o.conns, r.msgs, r.acks, r.reqs,
	       r.reconnects, secs, r.msgs / secs, r.reqs / secs, p50, p99,
	       cpu * 1e6 / (double)o.count, mcpu * 1e6 / (double)o.count,
	       bench_cpu_secs(), rc == 0 ? "true" : "false");
	for (int i = 0; i < o.conns; i++) {
		close(cs[i].fd);
		free(cs[i].head.p);
		free(cs[i].body.p);
		free(cs[i].in.p);
	}
	free(r.lat);
	bench_pool_free();
	return rc;
}
