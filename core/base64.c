#include "base64.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

char *
mri_base64_encode(const void *p, size_t len)
{
	static const char    tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				     "abcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *s     = p;
	char                *out   = malloc((len + 2) / 3 * 4 + 1), *o = out;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)s[i] << 16;

		if (i + 1 < len)
			v |= (unsigned)s[i + 1] << 8;
		if (i + 2 < len)
			v |= s[i + 2];
		*o++ = tab[(v >> 18) & 63];
		*o++ = tab[(v >> 12) & 63];
		*o++ = i + 1 < len ? tab[(v >> 6) & 63] : '=';
		*o++ = i + 2 < len ? tab[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

static int
base64__digit(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

unsigned char *
mri_base64_decode(const char *s, size_t *n)
{
	size_t         len = strlen(s), k = 0;
	unsigned char *out;

	if (len % 4 != 0 || (out = malloc(len / 4 * 3 + 1)) == NULL)
		return NULL;
	for (size_t i = 0; i < len; i += 4) {
		int  d[4];
		bool last = i + 4 == len;

		for (int j = 0; j < 4; j++)
			d[j] = base64__digit(s[i + j]);
		if (d[0] < 0 || d[1] < 0 ||
		    (d[2] < 0 && !(last && s[i + 2] == '=' && s[i + 3] == '=')) ||
		    (d[3] < 0 && !(last && s[i + 3] == '='))) {
			free(out);
			return NULL;
		}
		out[k++] = (unsigned char)(d[0] << 2 | d[1] >> 4);
		if (d[2] >= 0)
			out[k++] = (unsigned char)((d[1] & 15) << 4 | d[2] >> 2);
		if (d[2] >= 0 && d[3] >= 0)
			out[k++] = (unsigned char)((d[2] & 3) << 6 | d[3]);
	}
	*n = k;
	return out;
}
