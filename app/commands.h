/*  app/commands.h: the subcommands of `rapidphoto`. Each returns the
    process exit status: 0 success, 1 failure at run time, 2 wrong usage. */
#ifndef RP_COMMANDS_H
#define RP_COMMANDS_H

int rp_cmd_serve (int argc, char **argv);
int rp_cmd_pipeline (int argc, char **argv);
int rp_cmd_broker (int argc, char **argv);
int rp_cmd_worker (int argc, char **argv);
int rp_cmd_process (int argc, char **argv);
int rp_cmd_import (int argc, char **argv);
int rp_cmd_migrate (int argc, char **argv);
int rp_cmd_user (int argc, char **argv);
int rp_cmd_gateway (int argc, char **argv);
int rp_cmd_token (int argc, char **argv);
int rp_cmd_keygen (int argc, char **argv);
int rp_cmd_health (int argc, char **argv);
int rp_cmd_lambda (int argc, char **argv);
int rp_cmd_scrub (int argc, char **argv);

//  Print a usage error (one line, naming the problem) and return 2.
int rp_usage_error (const char *command, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

#include <czmq.h>
#include "engine/config.h"
#include "engine/runtime.h"

//  Expand FILE|DIR arguments into files (folders walked, sorted, hidden
//  files skipped) appended to paths (strings). The count, or -1 (printed).
int rp_collect_files (char **args, int count, zlistx_t *paths);
//  Parse [--config FILE] (into config_path) and allow at most max_args
//  arguments after the options, from argv [optind] on return. 0, or the
//  status of the usage error printed (2).
int rp_cmd_parse_config (const char *command, int argc, char **argv, const char **config_path,
                         int max_args);
//  Load the config for a command; prints the error line and returns 1 on
//  failure, 0 on success. The log then goes where log.output says.
int rp_cmd_load_config (const char *command, const char *path, rp_config_t *config);
//  The same, with the error in err instead of printed: 0, or -1.
int rp_cmd_config (const char *command, const char *path, rp_config_t *config, char *err, size_t errlen);
//  For a command whose stdout carries its results (process, import, user,
//  token, health): log lines go to stderr whatever log.output says, so
//  stdout holds the results alone. Called after rp_cmd_load_config.
void rp_cmd_log_to_stderr (void);
//  After the signal: drain, then stop every actor of runtime (app/cmd_engine.c's
//  DESIGN), within config's shutdown.timeout_s (past it the process exits 1).
void rp_cmd_drain_and_stop (rp_runtime_t **runtime, const rp_config_t *config);

#endif
