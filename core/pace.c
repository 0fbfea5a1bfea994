/* Pacing at a rate (core/pace.h). */
#include "pace.h"

uint32_t
mri_pace_chunk(uint32_t rate)
{
	if (rate == 0)
		return 1;
	return rate > 1000 ? 1000 : rate;
}

int64_t
mri_pace_wait_ms(int64_t start_ms, int64_t now_ms, uint64_t k, uint32_t rate)
{
	int64_t due;

	if (rate == 0)
		return 0;
	due = start_ms + (int64_t)((k * 1000 + rate - 1) / rate);
	return due > now_ms ? due - now_ms : 0;
}
