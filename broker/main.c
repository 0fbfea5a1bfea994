/*
 * mailroomd: the daemon. Signal handlers only set flags; the main thread
 * acts on them: SIGTERM and SIGINT drain and stop (a second SIGINT exits at
 * once), SIGHUP reloads the reloadable settings, SIGPIPE is ignored.
 */
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker/config.h"
#include "bridge/embedded.h"
#include "broker/http.h"
#include "broker/metrics.h"
#include "broker/server.h"
#include "core/log.h"
#include "mailroom/error.h"
#include "mailroom/version.h"

static volatile sig_atomic_t main__stop;
static volatile sig_atomic_t main__reload;

static void
main__on_signal(int sig)
{
	if (sig == SIGHUP) {
		main__reload = 1;
		return;
	}
	if (main__stop && sig == SIGINT)
		_exit(130);
	main__stop = 1;
}

static void
main__usage(FILE *f)
{
	fprintf(f,
		"usage: mailroomd [options]\n"
		"  -c, --config FILE      JSON settings file\n"
		"  -b, --brokers LIST     Kafka bootstrap servers (default: "
		"the embedded in-memory cluster)\n"
		"  -l, --listen URLS      nng listen URLs, comma-separated\n"
		"  -s, --set NAME=VALUE   any setting (see --help-config)\n"
		"      --log-level LEVEL  err, warning, notice, info, debug\n"
		"      --help-config      list the settings\n"
		"  -V, --version\n"
		"Settings apply as defaults, then the file, then MAILROOM_* "
		"variables, then flags.\n");
}

struct main__flag {
	const char *name;
	char       *value;
};

static int
main__load(struct mri_config *cfg, struct main__flag *flags, size_t nflags,
	   bool reload)
{
	char errstr[512];

	if (cfg->file && mri_config_load_file(cfg, cfg->file, reload, errstr,
					      sizeof(errstr)) != MR_OK)
		goto fail;
	if (mri_config_load_env(cfg, reload, errstr, sizeof(errstr)) != MR_OK)
		goto fail;
	for (size_t i = 0; i < nflags; i++)
		if (mri_config_set(cfg, flags[i].name, flags[i].value, reload,
				   errstr, sizeof(errstr)) != MR_OK)
			goto fail;
	if (mri_config_check(cfg, errstr, sizeof(errstr)) != MR_OK)
		goto fail;
	if (mri_log_level_parse(cfg->log_level) < 0) {
		snprintf(errstr, sizeof(errstr), "log.level: unknown level '%s'",
			 cfg->log_level);
		goto fail;
	}
	if (strcmp(cfg->log_format, "logfmt") != 0 &&
	    strcmp(cfg->log_format, "json") != 0) {
		snprintf(errstr, sizeof(errstr),
			 "log.format: '%s' is neither logfmt nor json",
			 cfg->log_format);
		goto fail;
	}
	mri_log_set_level(mri_log_level_parse(cfg->log_level));
	mri_log_set_json(strcmp(cfg->log_format, "json") == 0);
	return MR_OK;
fail:
	mri_err("component=config msg=\"%s\"", errstr);
	return MR_ECONFIG;
}

/* Read the settings anew into a copy; apply its reloadable ones only if all
 * of it was valid, so that a bad file changes nothing. */
static void
main__reload_config(struct mri_config *cfg, struct main__flag *flags,
		    size_t nflags, struct mri_server *srv)
{
	struct mri_config fresh;

	if (mri_config_init(&fresh) != MR_OK)
		return;
	if (cfg->file != NULL && (fresh.file = strdup(cfg->file)) == NULL) {
		mri_config_fini(&fresh);
		return;
	}
	if (main__load(&fresh, flags, nflags, false) != MR_OK) {
		mri_warn("component=config msg=\"reload refused; the running "
			 "settings stay\"");
		mri_log_set_level(mri_log_level_parse(cfg->log_level));
		mri_log_set_json(strcmp(cfg->log_format, "json") == 0);
		mri_config_fini(&fresh);
		return;
	}
	mri_server_reload(srv, &fresh);
	mri_config_fini(cfg);
	*cfg = fresh;
	mri_notice("component=config msg=\"reloaded\" log.level=%s",
		   cfg->log_level);
}

static int
main__metrics(void *arg, struct mri_wbuf *out)
{
	return mri_server_metrics(arg, out);
}

/* Start the HTTP API (docs/HTTP.md) on the server's inproc listener. */
static int
main__http(struct mri_http **out, const struct mri_config *cfg,
	   struct mri_server *srv)
{
	struct mri_http_conf c = {
	    .listen          = cfg->http_listen,
	    .upstream        = mri_server_inproc(srv),
	    .max_body        = (size_t)cfg->http_max_body_bytes,
	    .session_idle_ms = (uint32_t)cfg->http_session_idle_ms,
	    .read_timeout_ms = (uint32_t)cfg->http_read_timeout_ms,
	    .idle_timeout_ms = (uint32_t)cfg->http_idle_timeout_ms,
	    .max_connections = (size_t)cfg->http_max_connections,
	    .max_sessions    = (size_t)cfg->http_max_sessions,
	    .metrics         = main__metrics,
	    .metrics_arg     = srv,
	};
	char  errstr[512];
	char *token = NULL;
	int   rc;

	rc = mri_http_token(cfg->http_token, cfg->http_token_file, &token,
			    errstr, sizeof(errstr));
	if (rc == MR_OK) {
		c.token = token;
		rc      = mri_http_start(out, &c, errstr, sizeof(errstr));
	}
	free(token);
	if (rc != MR_OK)
		mri_err("component=http msg=\"%s\"", errstr);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"brokers", required_argument, NULL, 'b'},
	    {"listen", required_argument, NULL, 'l'},
	    {"set", required_argument, NULL, 's'},
	    {"log-level", required_argument, NULL, 'L'},
	    {"help-config", no_argument, NULL, 'H'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	struct mri_config    cfg;
	struct main__flag   *flags;
	size_t               nflags = 0;
	struct mri_embedded *emb    = NULL;
	struct mri_server   *srv    = NULL;
	struct mri_http     *http   = NULL;
	struct sigaction     sa;
	const char          *bootstrap;
	char                 errstr[512];
	int                  c, rc = 1;

	// With glibc's malloc (a sanitizer build, or MR_ALLOCATOR=system):
	// librdkafka's fetch buffers and the FETCH replies are megabytes,
	// freed as soon as used: keep that memory in the process rather than
	// give it back to the kernel and take it again, zeroed, page by page
	// (a fifth of mailroomd's CPU when consuming). It stays bounded by
	// the peak. jemalloc reuses such extents by itself.
	if (strcmp(MRD_ALLOCATOR, "system") == 0) {
		mallopt(M_MMAP_THRESHOLD, 64 << 20);
		mallopt(M_TRIM_THRESHOLD, 256 << 20);
	}

	if (mri_config_init(&cfg) != MR_OK)
		return 1;
	flags = calloc((size_t)argc, sizeof(*flags));
	while ((c = getopt_long(argc, argv, "c:b:l:s:Vh", opts, NULL)) != -1) {
		char *eq;
		switch (c) {
		case 'c':
			free(cfg.file);
			cfg.file = strdup(optarg);
			break;
		case 'b':
			flags[nflags++] = (struct main__flag){"kafka.brokers",
							      optarg};
			break;
		case 'l':
			flags[nflags++] = (struct main__flag){"listen", optarg};
			break;
		case 'L':
			flags[nflags++] = (struct main__flag){"log.level",
							      optarg};
			break;
		case 's':
			if ((eq = strchr(optarg, '=')) == NULL) {
				fprintf(stderr,
					"mailroomd: --set takes NAME=VALUE\n");
				goto out;
			}
			*eq             = '\0';
			flags[nflags++] = (struct main__flag){optarg, eq + 1};
			break;
		case 'H':
			mri_config_print_help();
			rc = 0;
			goto out;
		case 'V':
			printf("mailroomd %s\n", MR_VERSION_STRING);
			rc = 0;
			goto out;
		case 'h':
			main__usage(stdout);
			rc = 0;
			goto out;
		default:
			main__usage(stderr);
			rc = 2;
			goto out;
		}
	}
	if (optind < argc) {
		main__usage(stderr);
		rc = 2;
		goto out;
	}
	if (main__load(&cfg, flags, nflags, false) != MR_OK)
		goto out;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = main__on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	if (cfg.brokers[0] == '\0') {
		if (mri_embedded_start(&emb, 1, errstr, sizeof(errstr)) !=
		    MR_OK) {
			mri_err("component=embedded msg=\"%s\"", errstr);
			goto out;
		}
		bootstrap = mri_embedded_bootstraps(emb);
		mri_warn("component=embedded bootstrap=%s msg=\"EMBEDDED "
			 "IN-MEMORY KAFKA, FOR DEVELOPMENT ONLY: nothing "
			 "survives a restart, and each partition keeps only "
			 "about its last 5 MB, silently dropping older "
			 "records. Configure kafka.brokers for real use.\"",
			 bootstrap);
	} else {
		bootstrap = cfg.brokers;
	}
	if (mri_server_new(&srv, &cfg, bootstrap, emb, errstr,
			   sizeof(errstr)) != MR_OK ||
	    mri_server_start(srv, errstr, sizeof(errstr)) != MR_OK) {
		mri_err("component=server msg=\"%s\"", errstr);
		goto out;
	}
	if (cfg.http_listen[0] != '\0' &&
	    main__http(&http, &cfg, srv) != MR_OK)
		goto out;
	mri_notice("component=mailroomd version=%s bootstrap=%s embedded=%s "
		   "allocator=%s msg=\"ready\"",
		   MR_VERSION_STRING, bootstrap, emb ? "true" : "false",
		   MRD_ALLOCATOR);

	while (!main__stop) {
		if (main__reload) {
			main__reload = 0;
			mri_notice("component=mailroomd msg=\"SIGHUP: "
				   "reloading\"");
			main__reload_config(&cfg, flags, nflags, srv);
		}
		usleep(50000);
	}
	mri_notice("component=mailroomd msg=\"stopping\"");
	// The front door drains first: the HTTP API's requests in flight are
	// its clients' and get their answers (new ones get MR_ESHUTDOWN).
	mri_server_drain(srv, (int)cfg.shutdown_timeout_ms);
	mri_http_free(http);
	http = NULL;
	rc = 0;
out:
	mri_http_free(http);
	mri_server_free(srv);
	mri_embedded_stop(emb);
	if (rc == 0 && main__stop)
		mri_notice("component=mailroomd msg=\"stopped\"");
	mri_config_fini(&cfg);
	free(flags);
	return rc;
}
