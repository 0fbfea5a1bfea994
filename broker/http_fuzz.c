/*
 * libFuzzer target for the HTTP API's own parsing (broker/http_parse.h;
 * tests/fuzz/run_http_fuzz.sh builds it, tests/fuzz/replay_main.c replays
 * a corpus without libFuzzer).
 *
 * An input is a request target (a path and maybe a query) up to the first
 * newline, then a body. Then:
 *   - the whole input, as a request head, is parsed: a head taken lies
 *     within the input, and its parts (method, target, headers' names and
 *     values) are strings within it; a refusal is 400, 431 or 505;
 *   - the target is split into segments: each is a string no longer than
 *     the target, and the query's parameters "a" and "group" are read;
 *   - the body, when it is a JSON object, is made into a PUBLISH frame to
 *     topic "t": a frame that is made must decode (proto/frame.c, the
 *     front door's own decoder) into as many messages as the body has; a
 *     body that is refused must say why;
 *   - its "handles", when they are taken, come back sorted, each once.
 * Any failure aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/http_parse.h"
#include "mailroom/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz__target(const char *uri, size_t len)
{
	char  *seg[8], *query, *v;
	size_t n;
	bool   bad;

	if (mri_http_uri_split(uri, seg, 8, &n, &query) != MR_OK)
		return;
	for (size_t i = 0; i < n; i++) {
		if (seg[i][0] == '\0' || strlen(seg[i]) > len)
			abort();
		free(seg[i]);
	}
	if (query != NULL) {
		free(mri_http_query_get(query, "a", &bad));
		v = mri_http_query_get(query, "group", &bad);
		if (v != NULL && strlen(v) > len)
			abort();
		free(v);
		free(query);
	}
}

static void
fuzz__publish(json_t *body)
{
	struct mri_wbuf      w;
	struct mri_frame_hdr hdr;
	struct mri_pub_view *views = NULL;
	uint32_t             count;
	const char          *why;
	int64_t              bad;
	char                 reason[512] = "";
	json_t              *msgs        = json_object_get(body, "messages");
	int                  rc;

	mri_wbuf_init(&w);
	rc = mri_http_publish_encode(&w, "t", body, reason, sizeof(reason));
	if (rc == MR_OK) {
		if (mri_frame_parse_hdr(w.data, w.len, &hdr, &why) != MR_OK ||
		    mri_publish_decode(w.data + MRI_FRAME_HDR_LEN, hdr.body_len,
				       &views, &count, &why,
				       &bad) != MR_OK ||
		    count != (msgs != NULL ? json_array_size(msgs) : 1))
			abort();
		free(views);
	} else if (rc != MR_ENOMEM && reason[0] == '\0') {
		abort();
	}
	mri_wbuf_fini(&w);
}

static void
fuzz__handles(json_t *arr)
{
	uint64_t *v;
	size_t    n;
	char      why[256];

	if (mri_http_handles(arr, &v, &n, why, sizeof(why)) != MR_OK)
		return;
	if (n == 0 || n > json_array_size(arr))
		abort();
	for (size_t i = 1; i < n; i++)
		if (v[i - 1] >= v[i])
			abort();
	free(v);
}

static void
fuzz__head(const uint8_t *data, size_t size)
{
	char                *buf = malloc(size + 1);
	struct mri_http_head h;
	size_t               len = 0;
	int                  st;

	if (buf == NULL)
		return;
	memcpy(buf, data, size);
	buf[size] = '\0';
	st = mri_http_parse_head(buf, size, &h, &len);
	if (st == 200) {
		if (len == 0 || len > size || h.nhdr > MRI_HTTP_HEADERS_MAX ||
		    h.method < buf || h.target >= buf + len ||
		    strlen(h.method) == 0 || strlen(h.target) == 0)
			abort();
		for (size_t i = 0; i < h.nhdr; i++)
			if (h.hdr[i].name < buf ||
			    h.hdr[i].value >= buf + len ||
			    strlen(h.hdr[i].value) >= len)
				abort();
		(void)mri_http_head_get(&h, "content-length");
		// A loopback Host is made of digits, dots, colons, brackets
		// and "localhost" alone.
		for (size_t i = 0; i < h.nhdr; i++) {
			const char *v = h.hdr[i].value;

			if (mri_http_host_loopback(v) &&
			    v[strspn(v, "0123456789.:[]abcdefABCDEF")] !=
				'\0' &&
			    strncasecmp(v, "localhost", 9) != 0)
				abort();
		}
	} else if (st != 0 && st != 400 && st != 431 && st != 505) {
		abort();
	}
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl  = memchr(data, '\n', size);
	size_t         len = nl != NULL ? (size_t)(nl - data) : size;
	char          *uri = malloc(len + 1);
	json_t        *body;

	fuzz__head(data, size);
	if (uri == NULL)
		return 0;
	memcpy(uri, data, len);
	uri[len] = '\0';
	fuzz__target(uri, strlen(uri));
	free(uri);
	if (nl == NULL)
		return 0;
	body = json_loadb((const char *)nl + 1, size - len - 1, 0, NULL);
	if (json_is_object(body)) {
		fuzz__publish(body);
		fuzz__handles(json_object_get(body, "handles"));
	}
	json_decref(body);
	return 0;
}
