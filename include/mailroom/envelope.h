/*
 * The record envelope's header names (docs/PROTOCOL.md, "The record
 * envelope"): what a record that went through mailroom carries in Kafka,
 * whoever wrote or reads it (the client, mailroomd, a consumer, a tool).
 *
 * mailroomd sets specversion and id; a publisher may set the others
 * (mr_message's type, source, content_type, reply_to, correlation_id).
 * With mailroomd's producer.envelope=lean a record carries ce_id and only
 * what its publisher set: no specversion, and no default source, type or
 * time.
 *
 * Thread safety: constants only.
 */
#ifndef MAILROOM_ENVELOPE_H
#define MAILROOM_ENVELOPE_H

#define MR_HEADER_SPECVERSION "ce_specversion"
#define MR_HEADER_ID "ce_id"
#define MR_HEADER_SOURCE "ce_source"
#define MR_HEADER_TYPE "ce_type"
#define MR_HEADER_TIME "ce_time"
#define MR_HEADER_CONTENT_TYPE "content-type"
#define MR_HEADER_REPLY_TO "mr_reply_to"
#define MR_HEADER_CORRELATION_ID "mr_correlation_id"
#define MR_HEADER_ATTEMPT "mr_attempt"

#endif
