#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "proto/address.h"
#include "proto/frame.h"

#define PUBLISH__HDRS_MAX 64

/* A request of lines mode; its acks are printed in the order of the lines.
 * One answered before its turn is printed into text kept until then. */
struct publish__batch {
	struct publish__out   *out;
	struct publish__batch *next;
	bool                   done;
	int                    status;
	long                   first; // the index of its first line
	char                  *text;  // stdout's lines, when answered early
	size_t                 text_len;
	char                  *etext; // stderr's
	size_t                 etext_len;
};

struct publish__out {
	pthread_mutex_t        lock;
	struct publish__batch *head, *tail; // in the order of the lines
	bool            json;
	long            queued; // lines handed to requests so far
	long            ok;
	long            refused;
	long            unknown;
	long            held; // by backpressure, then acked or refused
	long            busy; // refused by backpressure (MR_EBUSY)
	int             request_err;
	int             stop_err; // mailroomd went away or is stopping
};

static void
publish__usage(FILE *f)
{
	fprintf(f,
		"usage: mailroom publish [options] ADDRESS [PAYLOAD]\n"
		"ADDRESS is topic or topic/key. The payload is PAYLOAD, or "
		"the file of -f, or standard input.\n"
		"  -k, --key KEY           key (instead of the address's)\n"
		"  -H, --header NAME=VALUE a header (repeatable)\n"
		"      --id ID             message id (ce_id; default a "
		"UUIDv7)\n"
		"      --type T            ce_type\n"
		"      --source S          ce_source\n"
		"      --content-type CT   content-type\n"
		"      --reply-to ADDR     mr_reply_to\n"
		"      --correlation-id C  mr_correlation_id\n"
		"  -f, --file FILE         read the payload (or lines) from "
		"FILE\n"
		"  -l, --lines             each input line is one message\n"
		"  -K, --key-delim C       with --lines: KEY<C>PAYLOAD\n"
		"  -b, --batch N           with --lines: messages per request "
		"(1000)\n"
		"      --busy-retry MS     send again what backpressure "
		"refuses (MR_EBUSY)\n"
		"                          after its retry-after, for up to MS "
		"(not with --lines)\n"
		"      --json              one JSON object per ack\n"
		"A message held by backpressure says for how long; one refused "
		"says when to\n"
		"send it again (exit 1).\n");
}

/* "TOPIC/PARTITION@OFFSET id=ID\n", the line of each message acked: made by
 * hand, as printf's was most of the CLI's cost per line. */
static void
publish__print_ok(const mr_ack *a, FILE *out)
{
	char   line[sizeof(a->topic) + sizeof(a->id) + 64], *p = line;
	size_t n = strlen(a->topic);

	memcpy(p, a->topic, n);
	p    += n;
	*p++  = '/';
	p     = cli_int(p, a->partition);
	*p++  = '@';
	p     = cli_int(p, a->offset);
	memcpy(p, " id=", 4);
	p += 4;
	n  = strlen(a->id);
	memcpy(p, a->id, n);
	p += n;
	if (a->duplicate) {
		memcpy(p, " (duplicate)", 12);
		p += 12;
	}
	*p++ = '\n';
	fwrite(line, 1, (size_t)(p - line), out);
}

/* Print the ack of message \p i to \p out (or \p err) and count it. */
static void
publish__print(struct publish__out *o, const mr_ack *a, long i, FILE *out,
	       FILE *err)
{
	if (a->held_ms > 0)
		o->held++;
	if (a->status == MR_EBUSY)
		o->busy++;
	if (a->status == MR_OK)
		o->ok++;
	else if (a->status == MR_EINDOUBT)
		o->unknown++;
	else
		o->refused++;
	if (o->json) {
		json_t *j = json_pack(
		    "{s:s, s:s, s:i, s:I, s:s, s:b}", "status",
		    a->status == MR_OK ? "ok" : mr_err_name(a->status),
		    "topic", a->topic, "partition", a->partition, "offset",
		    (json_int_t)a->offset, "id", a->id, "duplicate",
		    a->duplicate);
		if (a->status != MR_OK)
			json_object_set_new(
			    j, "error",
			    json_string(mr_err_sentence(a->status, a->error)));
		if (a->held_ms > 0)
			json_object_set_new(j, "held_ms",
					    json_integer(a->held_ms));
		if (a->status == MR_EBUSY)
			json_object_update_new(
			    j, json_pack("{s:i, s:I, s:I, s:s}",
					 "retry_after_ms", a->retry_after_ms,
					 "lag", (json_int_t)a->lag, "bound",
					 (json_int_t)a->bound, "bound_kind",
					 a->time_bound ? "time_lag_ms"
						       : "records"));
		json_dumpf(j, out, JSON_COMPACT);
		fputc('\n', out);
		json_decref(j);
		return;
	}
	if (a->status == MR_OK && a->held_ms > 0)
		fprintf(out,
			"%s/%d@%lld id=%s%s (held %d ms by backpressure)\n",
			a->topic, a->partition, (long long)a->offset, a->id,
			a->duplicate ? " (duplicate)" : "", a->held_ms);
	else if (a->status == MR_OK)
		publish__print_ok(a, out);
	else if (a->status == MR_EINDOUBT)
		fprintf(err,
			"mailroom: message %ld id=%s: outcome unknown: %s\n", i,
			a->id, a->error);
	else
		fprintf(err, "mailroom: message %ld refused: %s: %s\n", i,
			mr_err_name(a->status),
			mr_err_sentence(a->status, a->error));
}

/* Print the batches at the head of the queue that are answered, in the
 * order of the lines; with o->lock held. */
static void
publish__flush_done(struct publish__out *o)
{
	struct publish__batch *b;

	while ((b = o->head) != NULL && b->done) {
		if (b->status != MR_OK && o->request_err == MR_OK)
			o->request_err = b->status;
		if (b->text_len > 0)
			fwrite(b->text, 1, b->text_len, stdout);
		if (b->etext_len > 0)
			fwrite(b->etext, 1, b->etext_len, stderr);
		if ((o->head = b->next) == NULL)
			o->tail = NULL;
		free(b->text);
		free(b->etext);
		free(b);
	}
}

static void
publish__on_acks(void *arg, int status, const mr_ack *acks, size_t n)
{
	struct publish__batch *b = arg;
	struct publish__out   *o = b->out;

	pthread_mutex_lock(&o->lock);
	b->done   = true;
	b->status = status;
	if (o->stop_err == MR_OK && status != MR_OK &&
	    (status == MR_ESHUTDOWN || status == MR_EINDOUBT ||
	     cli_exit_for(status) == CLI_UNREACHABLE))
		o->stop_err = status;
	if (b == o->head) {
		// Its turn: printed at once.
		if (status != MR_OK && o->request_err == MR_OK)
			o->request_err = status;
		for (size_t i = 0; i < n; i++)
			publish__print(o, &acks[i], b->first + (long)i, stdout,
				       stderr);
		if ((o->head = b->next) == NULL)
			o->tail = NULL;
		free(b);
	} else {
		// Printed now into text that waits for its turn (not a copy
		// of the acks: a thousand are 800 KB).
		FILE *out = open_memstream(&b->text, &b->text_len);
		FILE *err = open_memstream(&b->etext, &b->etext_len);

		for (size_t i = 0; i < n; i++)
			if (out != NULL && err != NULL)
				publish__print(o, &acks[i],
					       b->first + (long)i, out, err);
			else if (acks[i].status == MR_OK)
				o->ok++; // out of memory: counted, unprinted
			else
				o->refused++;
		if (out != NULL)
			fclose(out);
		if (err != NULL)
			fclose(err);
	}
	publish__flush_done(o);
	fflush(stdout);
	pthread_mutex_unlock(&o->lock);
}

/* @returns a new batch of \p n lines queued after the others, or NULL. */
static struct publish__batch *
publish__batch_new(struct publish__out *o, int n)
{
	struct publish__batch *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	b->out = o;
	pthread_mutex_lock(&o->lock);
	b->first   = o->queued;
	o->queued += n;
	if (o->tail != NULL)
		o->tail->next = b;
	else
		o->head = b;
	o->tail = b;
	pthread_mutex_unlock(&o->lock);
	return b;
}

/* Takes back the newest batch, whose request was never sent. */
static void
publish__batch_drop(struct publish__out *o, struct publish__batch *b)
{
	struct publish__batch **pp;

	pthread_mutex_lock(&o->lock);
	o->queued = b->first;
	for (pp = &o->head; *pp != b; pp = &(*pp)->next)
		o->tail = *pp;
	*pp = NULL;
	if (o->head == NULL)
		o->tail = NULL;
	pthread_mutex_unlock(&o->lock);
	free(b);
}

static int
publish__read_all(FILE *f, char **out, size_t *len)
{
	size_t cap = 65536, n = 0, r;
	char  *buf = malloc(cap), *nb;

	if (buf == NULL)
		return -1;
	while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap) {
			if ((nb = realloc(buf, cap * 2)) == NULL) {
				free(buf);
				return -1;
			}
			buf  = nb;
			cap *= 2;
		}
	}
	if (ferror(f)) {
		free(buf);
		return -1;
	}
	*out = buf;
	*len = n;
	return 0;
}

/* \p m: the template with \p line (\p len bytes) as its payload, or as
 * its key and payload when \p key_delim is in it. */
static void
publish__line_msg(mr_message *m, const mr_message *tmpl, const char *line,
		  size_t len, int key_delim)
{
	const char *sep;

	*m             = *tmpl;
	m->payload     = line;
	m->payload_len = len;
	if (key_delim >= 0 && (sep = memchr(line, key_delim, len)) != NULL) {
		m->key         = line;
		m->key_len     = (size_t)(sep - line);
		m->payload     = sep + 1;
		m->payload_len = len - m->key_len - 1;
	}
}

/* Lines mode: batches of messages, many requests in flight. A batch's
 * lines are kept one after another in one buffer (line i from offs[i] to
 * offs[i + 1]), not one allocation each. */
static int
publish__lines(mr_client *c, FILE *in, const mr_message *tmpl,
	       int key_delim, int batch, struct publish__out *o)
{
	mr_message     *msgs = calloc((size_t)batch, sizeof(*msgs));
	size_t         *offs = calloc((size_t)batch + 1, sizeof(*offs));
	struct mri_wbuf text;
	char           *line = NULL;
	size_t          cap  = 0;
	ssize_t         len;
	long            sent = 0;
	int             n = 0, rc = MR_OK;

	mri_wbuf_init(&text);
	// Never NULL, even for a batch of empty lines: the messages point
	// into it.
	if (msgs == NULL || offs == NULL ||
	    mri_wbuf_reserve(&text, 65536) != MR_OK) {
		rc = MR_ENOMEM;
		goto out;
	}
	for (;;) {
		len = getline(&line, &cap, in);
		if (len >= 0) {
			if (len > 0 && line[len - 1] == '\n')
				len--;
			offs[n++] = text.len;
			mri_wbuf_put(&text, line, (size_t)len);
			if ((rc = text.err) != MR_OK)
				break;
		}
		if (n > 0 && (n == batch || len < 0)) {
			struct publish__batch *b;

			// Sending the rest to a mailroomd that is gone or
			// stopping would only fail each line in turn.
			pthread_mutex_lock(&o->lock);
			rc = o->stop_err;
			pthread_mutex_unlock(&o->lock);
			if (rc != MR_OK) {
				fprintf(stderr,
					"mailroom: stopped sending after %ld "
					"lines: %s\n",
					sent, mr_strerror(rc));
				break;
			}
			// The text no longer moves: the messages borrow it.
			offs[n] = text.len;
			for (int i = 0; i < n; i++)
				publish__line_msg(&msgs[i], tmpl,
						  (char *)text.data + offs[i],
						  offs[i + 1] - offs[i],
						  key_delim);
			b = publish__batch_new(o, n);

			// The client copies the messages into its frame.
			rc = b == NULL ? MR_ENOMEM
				       : mr_publish_async(c, msgs, (size_t)n,
							  publish__on_acks, b);
			if (rc != MR_OK && b != NULL)
				publish__batch_drop(o, b);
			if (rc == MR_OK)
				sent += n;
			n        = 0;
			text.len = 0;
			if (rc != MR_OK)
				break;
		}
		if (len < 0)
			break;
	}
	if (rc == MR_OK && ferror(in))
		rc = MR_EIO;
out:
	free(line);
	mri_wbuf_fini(&text);
	free(msgs);
	free(offs);
	return rc;
}

/* Refuse locally, with a sentence, what mailroomd would refuse anyway (the
 * topic: mri_address_parse, before). */
static bool
publish__check(const mr_message *m)
{
	size_t n;

	if (m->id != NULL && ((n = strlen(m->id)) == 0 || n > MR_ID_MAX)) {
		fprintf(stderr, "mailroom: --id takes 1 to %d bytes, not %zu\n",
			MR_ID_MAX, n);
		return false;
	}
	for (size_t i = 0; i < m->header_count; i++)
		if ((n = strlen(m->headers[i].name)) > MRI_HDR_NAME_MAX) {
			fprintf(stderr,
				"mailroom: a header name takes at most %d "
				"bytes, not %zu\n",
				MRI_HDR_NAME_MAX, n);
			return false;
		}
	return true;
}

int
cli_publish(const struct cli_common *co, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"key", required_argument, NULL, 'k'},
	    {"header", required_argument, NULL, 'H'},
	    {"id", required_argument, NULL, 'i'},
	    {"type", required_argument, NULL, 'T'},
	    {"source", required_argument, NULL, 'S'},
	    {"content-type", required_argument, NULL, 'C'},
	    {"reply-to", required_argument, NULL, 'R'},
	    {"correlation-id", required_argument, NULL, 'c'},
	    {"file", required_argument, NULL, 'f'},
	    {"lines", no_argument, NULL, 'l'},
	    {"key-delim", required_argument, NULL, 'K'},
	    {"batch", required_argument, NULL, 'b'},
	    {"json", no_argument, NULL, 'j'},
	    {"busy-retry", required_argument, NULL, 'B'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	struct publish__out o     = {.lock = PTHREAD_MUTEX_INITIALIZER};
	struct cli_common   cco   = *co;
	mr_header           hdrs[PUBLISH__HDRS_MAX];
	mr_message          m     = {0};
	const char         *file  = NULL, *key = NULL;
	bool                lines = false;
	int                 key_delim = -1, batch = 1000, ch, rc, code;
	char               *topic = NULL, *payload = NULL, *eq;
	size_t              payload_len = 0;
	FILE               *in = stdin;
	mr_client          *c;
	mr_ack              ack;
	struct mri_address  addr;

	while ((ch = getopt_long(argc, argv, "k:H:f:lK:b:h", opts, NULL)) !=
	       -1) {
		switch (ch) {
		case 'k':
			key = optarg;
			break;
		case 'H':
			if ((eq = strchr(optarg, '=')) == NULL ||
			    eq == optarg ||
			    m.header_count == PUBLISH__HDRS_MAX) {
				fprintf(stderr, "mailroom: --header takes "
						"NAME=VALUE (at most 64)\n");
				return CLI_USAGE;
			}
			*eq                         = '\0';
			hdrs[m.header_count].name     = optarg;
			hdrs[m.header_count].value     = eq + 1;
			hdrs[m.header_count++].value_len = strlen(eq + 1);
			break;
		case 'i':
			m.id = optarg;
			break;
		case 'T':
			m.type = optarg;
			break;
		case 'S':
			m.source = optarg;
			break;
		case 'C':
			m.content_type = optarg;
			break;
		case 'R':
			m.reply_to = optarg;
			break;
		case 'c':
			m.correlation_id = optarg;
			break;
		case 'f':
			file = optarg;
			break;
		case 'l':
			lines = true;
			break;
		case 'K':
			if (strlen(optarg) != 1) {
				fprintf(stderr, "mailroom: --key-delim takes "
						"one character\n");
				return CLI_USAGE;
			}
			key_delim = (unsigned char)optarg[0];
			break;
		case 'b':
			batch = atoi(optarg);
			if (batch < 1 || batch > 100000) {
				fprintf(stderr, "mailroom: --batch takes "
						"1..100000\n");
				return CLI_USAGE;
			}
			break;
		case 'j':
			o.json = true;
			break;
		case 'B':
			cco.busy_retry_ms = atoi(optarg);
			if (cco.busy_retry_ms < 1) {
				fprintf(stderr, "mailroom: --busy-retry takes "
						"milliseconds > 0\n");
				return CLI_USAGE;
			}
			break;
		case 'h':
			publish__usage(stdout);
			return CLI_OK;
		default:
			publish__usage(stderr);
			return CLI_USAGE;
		}
	}
	if (optind >= argc || argc - optind > 2 ||
	    (argc - optind == 2 && (file || lines)) ||
	    (lines && (m.id != NULL || cco.busy_retry_ms > 0))) {
		publish__usage(stderr);
		return CLI_USAGE;
	}
	if (mri_address_parse(argv[optind], &addr) != MR_OK) {
		fprintf(stderr, "mailroom: invalid topic '%.*s': "
			MRI_TOPIC_RULE "\n", (int)addr.topic_len, addr.topic);
		return CLI_USAGE;
	}
	if ((topic = strndup(addr.topic, addr.topic_len)) == NULL)
		return CLI_REFUSED;
	m.key     = addr.key;
	m.key_len = addr.key_len;
	if (key != NULL) {
		m.key     = key;
		m.key_len = strlen(key);
	}
	m.topic   = topic;
	m.headers = hdrs;
	if (!publish__check(&m)) {
		free(topic);
		return CLI_USAGE;
	}
	if (file != NULL && (in = fopen(file, "rb")) == NULL) {
		fprintf(stderr, "mailroom: %s: %s\n", file, strerror(errno));
		free(topic);
		return CLI_INPUT;
	}
	// Lines mode makes its requests itself, -b lines each: the client
	// does not gather them into bigger ones. A bound's overshoot is one
	// request, and the user said how large that is.
	if (lines)
		cco.linger_us = -1;
	if (cli_connect(&cco, &c) != MR_OK) {
		if (in != stdin)
			fclose(in);
		free(topic);
		return CLI_UNREACHABLE;
	}
	if (lines) {
		rc = publish__lines(c, in, &m, key_delim, batch, &o);
		mr_client_drain(c, co->timeout_ms + 1000);
	} else {
		if (argc - optind == 2) {
			m.payload     = argv[optind + 1];
			m.payload_len = strlen(argv[optind + 1]);
			rc            = MR_OK;
		} else if (publish__read_all(in, &payload, &payload_len) != 0) {
			rc = MR_EIO;
		} else {
			m.payload     = payload;
			m.payload_len = payload_len;
			rc            = MR_OK;
		}
		if (rc == MR_OK) {
			// mr_publish fills the ack whatever happens.
			mr_publish(c, &m, &ack);
			publish__print(&o, &ack, 0, stdout, stderr);
			if (cli_exit_for(ack.status) == CLI_UNREACHABLE)
				o.request_err = ack.status;
		}
	}
	mr_client_free(c);
	if (in != stdin)
		fclose(in);
	free(topic);
	free(payload);

	if (rc == MR_EIO) {
		fprintf(stderr, "mailroom: cannot read the input\n");
		return CLI_INPUT;
	}
	if (rc != MR_OK) {
		fprintf(stderr, "mailroom: publish failed: %s: %s\n",
			mr_err_name(rc), mr_strerror(rc));
		return cli_exit_for(rc) == CLI_OK ? CLI_REFUSED
						   : cli_exit_for(rc);
	}
	if (o.held > 0 || o.busy > 0)
		fprintf(stderr,
			"mailroom: backpressure: %ld messages held, %ld "
			"refused (MR_EBUSY: send those again later, or use "
			"--busy-retry)\n",
			o.held, o.busy);
	code = o.refused ? CLI_REFUSED : CLI_OK;
	if (o.request_err != MR_OK &&
	    cli_exit_for(o.request_err) == CLI_UNREACHABLE)
		code = CLI_UNREACHABLE;
	if (o.unknown)
		code = CLI_UNKNOWN;
	return code;
}
