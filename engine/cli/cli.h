/*
 * cli.h — what the CLI's files share: normlab.c trains one spec (cli_train), cli_sweep.c runs a
 * sweep's cells through it and reports on them. Single-threaded (the CLI's main thread).
 */
#ifndef CLI_H
#define CLI_H

#include "spec.h"

/*
 * Trains spec (borrowed) into dir (created): metrics.jsonl, checkpoint.safetensors, spec.json,
 * summary.json, with the progress display. data_dir NULL = the default. resume: continue from
 * dir's checkpoint. Returns the exit code: 0 done, 1 error, 3 diverged, 130 interrupted.
 */
int cli_train(const struct spec *spec, const char *dir, const char *data_dir, int resume,
	      long ckpt_every);

/* 1 once SIGINT/SIGTERM arrived (cli_train installs the handler). */
int cli_stop_requested(void);

/* normlab sweep FILE [--out DIR] [--data-dir DIR] [--dry-run]; returns the exit code. */
int cli_sweep(int argc, char **argv);
/* normlab report DIR [--json]; returns the exit code. */
int cli_report(int argc, char **argv);

#endif
