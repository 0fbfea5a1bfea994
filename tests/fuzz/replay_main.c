/*
 * Runs a libFuzzer target over saved inputs, for builds without libFuzzer
 * (gcc, or a plain CTest run): every regular file named on the command
 * line, and every regular file directly inside a directory named there.
 *
 * Each input is copied into a buffer of exactly its size, so that a
 * sanitizer build sees any read past it. Exits 0 when every input ran, 1
 * when a path could not be read or there was nothing to run; a crash in
 * the target ends the run.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay__file(const char *path, size_t *ran)
{
	FILE    *f = fopen(path, "rb");
	uint8_t *buf;
	long     n;

	if (f == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		fprintf(stderr, "replay: %s: cannot size it\n", path);
		fclose(f);
		return -1;
	}
	// malloc(0) may return NULL: keep one byte, pass the real size.
	if ((buf = malloc(n > 0 ? (size_t)n : 1)) == NULL) {
		fprintf(stderr, "replay: %s: out of memory\n", path);
		fclose(f);
		return -1;
	}
	if (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "replay: %s: short read\n", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	free(buf);
	(*ran)++;
	return 0;
}

static int
replay__dir(const char *path, size_t *ran)
{
	DIR           *d = opendir(path);
	struct dirent *e;
	int            rc = 0;

	if (d == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		char        p[4096];
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		if (snprintf(p, sizeof(p), "%s/%s", path, e->d_name) >=
		    (int)sizeof(p)) {
			fprintf(stderr, "replay: %s/%s: path too long\n", path,
				e->d_name);
			rc = -1;
			continue;
		}
		if (stat(p, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (replay__file(p, ran) != 0)
			rc = -1;
	}
	closedir(d);
	return rc;
}

int
main(int argc, char **argv)
{
	size_t ran = 0;
	int    rc  = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;

		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i],
				strerror(errno));
			rc = 1;
		} else if (S_ISDIR(st.st_mode)) {
			if (replay__dir(argv[i], &ran) != 0)
				rc = 1;
		} else if (replay__file(argv[i], &ran) != 0) {
			rc = 1;
		}
	}
	printf("replay: ran %zu inputs\n", ran);
	if (ran == 0) {
		fprintf(stderr, "replay: no inputs found\n");
		rc = 1;
	}
	return rc;
}
