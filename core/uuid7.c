#include "uuid7.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>

struct uuid7__state {
	int      seeded;
	uint64_t rng[2];
	uint64_t last_ms;
	uint16_t counter;
};

static _Thread_local struct uuid7__state uuid7__tls;

// xorshift128+: fast, and seeded per thread from the kernel.
static uint64_t
uuid7__next(struct uuid7__state *s)
{
	uint64_t a = s->rng[0];
	uint64_t b = s->rng[1];

	s->rng[0] = b;
	a ^= a << 23;
	s->rng[1] = a ^ b ^ (a >> 17) ^ (b >> 26);
	return s->rng[1] + b;
}

static void
uuid7__seed(struct uuid7__state *s)
{
	struct timespec ts;

	if (getrandom(s->rng, sizeof(s->rng), 0) != (ssize_t)sizeof(s->rng)) {
		clock_gettime(CLOCK_REALTIME, &ts);
		s->rng[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL;
		s->rng[1] = (uint64_t)(uintptr_t)s ^ (uint64_t)ts.tv_sec;
	}
	if (s->rng[0] == 0 && s->rng[1] == 0)
		s->rng[1] = 1;
	s->seeded = 1;
}

void
mri_uuid7_new(uint8_t out[16])
{
	struct uuid7__state *s = &uuid7__tls;
	struct timespec      ts;
	uint64_t             ms, r;

	if (!s->seeded)
		uuid7__seed(s);
	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	if (ms > s->last_ms) {
		s->last_ms = ms;
		s->counter = (uint16_t)(uuid7__next(s) & 0x3ff);
	} else {
		// Same millisecond (or the clock stepped back): count up.
		s->counter++;
		if (s->counter > 0xfff) {
			s->last_ms++;
			s->counter = 0;
		}
		ms = s->last_ms;
	}
	out[0] = (uint8_t)(ms >> 40);
	out[1] = (uint8_t)(ms >> 32);
	out[2] = (uint8_t)(ms >> 24);
	out[3] = (uint8_t)(ms >> 16);
	out[4] = (uint8_t)(ms >> 8);
	out[5] = (uint8_t)ms;
	out[6] = (uint8_t)(0x70 | ((s->counter >> 8) & 0x0f));
	out[7] = (uint8_t)s->counter;
	r      = uuid7__next(s);
	memcpy(out + 8, &r, 8);
	out[8] = (uint8_t)(0x80 | (out[8] & 0x3f));
}

void
mri_uuid_format(const uint8_t u[16], char out[MRI_UUID_STRLEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	int               j     = 0;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[j++] = '-';
		out[j++] = hex[u[i] >> 4];
		out[j++] = hex[u[i] & 0x0f];
	}
	out[j] = '\0';
}

void
mri_uuid7_string(char out[MRI_UUID_STRLEN + 1])
{
	uint8_t u[16];

	mri_uuid7_new(u);
	mri_uuid_format(u, out);
}
