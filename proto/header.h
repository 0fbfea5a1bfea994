/*
 * What a message is made of, as the protocol bounds it: its id, its topic,
 * its headers. Apart from the frame codec (proto/frame.h, which includes
 * this), so that the parts below the front door (bridge/) can speak of a
 * message's headers without the wire's encoders.
 */
#ifndef MRI_HEADER_H
#define MRI_HEADER_H

#include <stdint.h>

#define MRI_TOPIC_MAX 249
#define MRI_ID_MAX 255
#define MRI_HDR_NAME_MAX 255
#define MRI_HDR_COUNT_MAX 256

/** @brief One header of a message, as it is on the wire (borrowed). */
struct mri_hdr_view {
	const char *name;
	uint16_t    name_len;
	const void *value;
	uint32_t    value_len;
};

#endif
