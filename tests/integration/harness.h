/*
 * Helpers for the integration tests (Check): run mailroomd as a child
 * process on a private ipc:// socket, read a topic back from Kafka with an
 * independent librdkafka consumer, and run shell commands.
 *
 * Every mailroomd started here dies with the process that started it
 * (PR_SET_PDEATHSIG), so that a failed assertion in a forked Check test
 * cannot leave one behind; mrt_daemon_stop and mrt_daemon_kill end it
 * explicitly.
 *
 * Thread safety: not thread-safe; call from the test's own thread.
 */
#ifndef MRT_HARNESS_H
#define MRT_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

/* ---- mailroomd as a child process ------------------------------------- */

struct mrt_daemon {
	pid_t pid;            /* 0 when not running */
	char  dir[256];       /* private mktemp directory: socket and log */
	char  url[320];       /* ipc://DIR/mailroomd.sock */
	char  log_path[320];  /* mailroomd's stdout and stderr */
	char  bootstrap[256]; /* Kafka bootstrap, from its status */
	bool  embedded;       /* status .kafka.embedded */
};

/**
 * @brief Start $MR_BINARY_DIR/mailroomd listening on a private ipc://
 *        socket, and wait (bounded) until a client gets its status.
 * @param brokers Kafka bootstrap servers, or NULL for the embedded cluster.
 * @param sets    NULL-terminated "name=value" settings passed as --set, or
 *                NULL.
 * @returns 0, or -1 with a sentence in errbuf (the child is killed).
 */
int mrt_daemon_start(struct mrt_daemon *d, const char *brokers,
		     const char *const *sets, char *errbuf, size_t errlen);

/**
 * @brief Start mailroomd again, after it stopped or was killed, in the same
 *        directory: on the same URL, its log appended to, so that a client
 *        of the first one reconnects to it. Waits as mrt_daemon_start.
 * @returns 0, or -1 with a sentence in errbuf (also when it still runs).
 */
int mrt_daemon_restart(struct mrt_daemon *d, const char *brokers,
		       const char *const *sets, char *errbuf, size_t errlen);

/**
 * @brief SIGTERM the daemon and wait up to \p timeout_ms for it to exit;
 *        SIGKILL it after that.
 * @returns its exit status (0..255), 128+signal if a signal ended it, or
 *          -1 if it had to be killed after the timeout (or was not
 *          running).
 */
int mrt_daemon_stop(struct mrt_daemon *d, int timeout_ms);

/** @brief Send \p sig to the daemon (no wait). @returns kill()'s result. */
int mrt_daemon_signal(struct mrt_daemon *d, int sig);

/**
 * @brief Wait up to \p timeout_ms for the daemon to exit by itself.
 * @returns as mrt_daemon_stop, or -1 if it is still running.
 */
int mrt_daemon_wait(struct mrt_daemon *d, int timeout_ms);

/** @brief SIGKILL the daemon and reap it. */
void mrt_daemon_kill(struct mrt_daemon *d);

/** @brief Kill the daemon if it runs, and remove its directory. */
void mrt_daemon_cleanup(struct mrt_daemon *d);

/** @returns the daemon's status as parsed JSON (new), or NULL. */
json_t *mrt_daemon_status(const struct mrt_daemon *d);

/**
 * @brief Run an admin request on a fresh client.
 * @returns the reply (new), or NULL if the request itself failed.
 */
json_t *mrt_daemon_admin(const struct mrt_daemon *d, const char *request);

/** @brief The last lines of the daemon's log, for failure messages
 *         (static buffer). */
const char *mrt_daemon_log_tail(const struct mrt_daemon *d);

/* ---- the real Kafka of the CTest fixture ------------------------------ */

/**
 * @brief When $MR_KAFKA is set, read the bootstrap of the fixture's broker
 *        from $MR_KAFKA_DIR/bootstrap into \p out.
 * @returns 1 with *out filled; 0 when MR_KAFKA is not set (embedded mode);
 *          77 when the fixture wrote $MR_KAFKA_DIR/unavailable (its content
 *          in \p reason); -1 on any other problem (reason says which).
 */
int mrt_kafka_bootstrap(char *out, size_t outlen, char *reason,
			size_t reasonlen);

/* ---- reading a topic back -------------------------------------------- */

struct mrt_header {
	char  *name;
	void  *value; /* NULL for a null header value */
	size_t value_len;
};

struct mrt_record {
	int32_t            partition;
	int64_t            offset;
	bool               has_key; /* false: a null key */
	void              *key;
	size_t             key_len;
	bool               has_payload; /* false: a null value */
	void              *payload;
	size_t             payload_len;
	struct mrt_header *hdrs;
	size_t             hdr_count;
};

struct mrt_records {
	struct mrt_record *v;
	size_t             n;
	int                partitions; /* the topic's partition count */
};

/**
 * @brief Read \p topic from the beginning of each of its partitions
 *        (assign(), no group), until at least \p want records were read
 *        and every partition is at its end, or until \p timeout_ms.
 * @returns 0 (out filled, in no particular order across partitions, in
 *          offset order within one), or -1 with a sentence in errbuf (a
 *          timeout with fewer than \p want records is not an error: check
 *          out->n).
 */
int mrt_kafka_read(const char *bootstrap, const char *topic, size_t want,
		   int timeout_ms, struct mrt_records *out, char *errbuf,
		   size_t errlen);

void mrt_records_free(struct mrt_records *r);

/** @returns the first header called \p name, or NULL. */
const struct mrt_header *mrt_record_header(const struct mrt_record *r,
					   const char *name);

/** @returns true if header \p name exists and equals the string \p s. */
bool mrt_record_header_is(const struct mrt_record *r, const char *name,
			  const char *s);

/** @returns the record with ce_id \p id (the first one), or NULL. */
const struct mrt_record *mrt_records_find_id(const struct mrt_records *rs,
					     const char *id);

/** @returns how many records have ce_id \p id. */
size_t mrt_records_count_id(const struct mrt_records *rs, const char *id);

/** @brief Records by ce_id, for exactly-once checks over many records. */
struct mrt_id_entry {
	const char              *id;
	const struct mrt_record *r;
};

struct mrt_id_index {
	struct mrt_id_entry *v;
	size_t               n;
};

/** @brief Index \p rs (borrowed: keep it while the index is used).
 *  @returns 0 or -1 when out of memory. */
int mrt_id_index_build(const struct mrt_records *rs, struct mrt_id_index *ix);

/** @returns how many records have ce_id \p id: they are ix->v[*pos] and
 *           the ones after it. */
size_t mrt_id_index_find(const struct mrt_id_index *ix, const char *id,
			 size_t *pos);

void mrt_id_index_free(struct mrt_id_index *ix);

/* ---- shell commands --------------------------------------------------- */

/**
 * @brief Run a command with /bin/sh -c.
 * @returns its exit status (0..255), 128+signal, or -1 if it could not run.
 */
int mrt_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/**
 * @brief Run a command with /bin/sh -c and capture its standard output
 *        (binary-safe; new, NUL-terminated beyond *len: free() it).
 * @returns as mrt_sh.
 */
int mrt_sh_output(char **out, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** @returns milliseconds on a monotonic clock. */
int64_t mrt_now_ms(void);

/** @brief Sleep \p ms milliseconds. */
void mrt_sleep_ms(int ms);

#endif
