/*
 * The web console's files (console/: HTML, JavaScript, CSS), embedded in
 * mailroomd at build time (cmake/embed.cmake), so that it serves them with
 * no path to find and no network: GET / and GET /console/{name}
 * (docs/HTTP.md, "Console").
 */
#ifndef MRI_CONSOLE_H
#define MRI_CONSOLE_H

#include <stddef.h>

struct mri_console_file {
	const char          *name; /* "index.html"; NULL ends the table */
	const unsigned char *bytes;
	size_t               len;
};

extern const struct mri_console_file mri_console_files[];

#endif
