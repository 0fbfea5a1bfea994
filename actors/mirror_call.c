/*
 * Mirrored actors, typed records (include/mailroom/router.h): a record sent
 * by address carries its message type in an mr_type header, and, when it
 * is a call, where the reply goes (mr_reply_to, topic/key) and the
 * caller's mr_correlation_id. The wrapper behaviour (mirror.c) hands a
 * delivery here to be handled: a typed record becomes a cast, or a call
 * whose from is external (mr_call_external), its reply published to the
 * reply address; any other record is an MR_MSG_DELIVERY cast.
 */
#include "mirror_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *
mri_mirror_header(const mr_delivery *d, const char *name, char *out,
		  size_t n)
{
	for (size_t i = 0; i < d->header_count; i++)
		if (strcmp(d->headers[i].name, name) == 0) {
			snprintf(out, n, "%.*s", (int)d->headers[i].value_len,
				 (const char *)d->headers[i].value);
			return out;
		}
	return NULL;
}

/* Where a remote call's reply goes: its reply address and correlation
 * id, both copied. */
struct mirror__reply {
	mr_mirror *m;
	char       topic[250];
	char       corr[MIRROR__CORR_MAX + 1];
	size_t     key_len;
	char       key[];
};

static void
mirror__reply_sent(void *arg, int status, const mr_ack *acks, size_t n)
{
	(void)arg;
	(void)status;
	(void)acks;
	(void)n; // a reply lost is the caller's timeout
}

/* A remote call was answered: publish the reply to its address. */
static void
mirror__replied(void *arg, int err, const void *data, size_t len)
{
	struct mirror__reply *rp  = arg;
	mr_mirror            *m   = rp->m;
	mr_header             h   = {"mr_status", mr_err_name(err),
				     strlen(mr_err_name(err))};
	mr_message            msg = {.topic          = rp->topic,
				     .key            = rp->key,
				     .key_len        = rp->key_len,
				     .payload        = data,
				     .payload_len    = len,
				     .correlation_id = rp->corr,
				     .headers        = &h,
				     .header_count   = err != MR_OK ? 1 : 0};

	if (mr_publish_async(m->c, &msg, 1, mirror__reply_sent, NULL) != MR_OK)
		fprintf(stderr,
			"mailroom: mirror %s: a reply to %s could not be "
			"sent: %s\n",
			m->topic, rp->topic, mr_client_last_error());
	free(rp);
	// The run's end waits for this (a reply after the actor's end, its
	// calls failed, comes after its terminate).
	pthread_mutex_lock(&m->lock);
	m->replies--;
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->lock);
}

/* Run the type's callback for delivery \p d. A record with an mr_type
 * header (a send by address, include/mailroom/router.h) is a message of
 * that type, its payload the data: a call when it has a reply address and
 * a correlation id, else a cast. Any other record is an MR_MSG_DELIVERY
 * cast. */
int
mri_mirror_handle(mr_actor *self, mr_mirror *m, void *ustate,
		  const mr_delivery *d)
{
	mr_msg                um = {.type = MR_MSG_DELIVERY,
				    .data = d,
				    .len  = sizeof(d)};
	char                  t[16], to[300], corr[MIRROR__CORR_MAX + 1];
	const char           *rto, *rcorr;
	char                 *end, *slash;
	unsigned long         type;
	struct mirror__reply *rp;
	mr_from               from;

	if (mri_mirror_header(d, "mr_type", t, sizeof(t)) == NULL)
		return m->user->handle_cast != NULL
			   ? m->user->handle_cast(self, ustate, &um)
			   : MR_OK;
	// A typed record that is not one (not a decimal type below the
	// reserved ones, a reply address or correlation id cut to fit) can
	// never be handled as it means: to the dead-letter topic.
	type  = strtoul(t, &end, 10);
	rto   = mri_mirror_header(d, "mr_reply_to", to, sizeof(to));
	rcorr = mri_mirror_header(d, "mr_correlation_id", corr, sizeof(corr));
	if (end == t || *end != '\0' || t[0] == '-' ||
	    strlen(t) >= sizeof(t) - 1 || type >= MIRROR__TYPE_RESERVED ||
	    (rto != NULL && strlen(to) >= sizeof(to) - 1) ||
	    (rcorr != NULL && strlen(corr) >= sizeof(corr) - 1))
		return MR_EREJECT;
	um = (mr_msg){.type = (uint32_t)type,
		      .data = d->payload,
		      .len  = d->payload_len};
	if (rto == NULL || rcorr == NULL)
		return m->user->handle_cast != NULL
			   ? m->user->handle_cast(self, ustate, &um)
			   : MR_OK;
	// A call: a reply address that is not topic/key can never be
	// answered.
	if ((slash = strchr(to, '/')) == NULL || slash == to ||
	    slash[1] == '\0' || (size_t)(slash - to) >= sizeof(rp->topic))
		return MR_EREJECT;
	if ((rp = malloc(sizeof(*rp) + strlen(slash + 1))) == NULL)
		return MR_ENOMEM;
	rp->m = m;
	snprintf(rp->topic, sizeof(rp->topic), "%.*s", (int)(slash - to), to);
	snprintf(rp->corr, sizeof(rp->corr), "%s", corr);
	rp->key_len = strlen(slash + 1);
	memcpy(rp->key, slash + 1, rp->key_len);
	pthread_mutex_lock(&m->lock);
	m->replies++;
	pthread_mutex_unlock(&m->lock);
	if (mr_call_external(self, mirror__replied, rp, &from) != MR_OK) {
		pthread_mutex_lock(&m->lock);
		m->replies--;
		pthread_mutex_unlock(&m->lock);
		free(rp);
		return MR_ENOMEM;
	}
	if (m->user->handle_call == NULL) {
		mr_reply_error(m->sys, from, MR_ENOTSUP);
		return MR_OK;
	}
	return m->user->handle_call(self, ustate, &um, from);
}
