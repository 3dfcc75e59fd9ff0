/* resil-init's entry point: subcommands, --help, --version, then the supervisor. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resil/config.h"
#include "resil/health.h"
#include "resil/log.h"
#include "resil/control.h"
#include "resil/status.h"
#include "resil/supervisor.h"

extern char **environ;

#define HELP_WIDTH 100
#define HELP_LEFT 34

/* Prints text from column HELP_LEFT, wrapped at word boundaries to HELP_WIDTH. */
static void print_wrapped(const char *text, int column)
{
    const char *p = text;
    while (*p) {
        int room = HELP_WIDTH - column;
        size_t len = strlen(p);
        size_t take = len;
        if ((int)len > room) {
            take = (size_t)room;
            while (take > 0 && p[take] != ' ')
                take--;
            if (take == 0)
                take = (size_t)room;
        }
        printf("%.*s\n", (int)take, p);
        p += take;
        while (*p == ' ')
            p++;
        if (*p)
            printf("%*s", HELP_LEFT, "");
        column = HELP_LEFT;
    }
}

static void print_option(const struct config_option *o)
{
    char left[64], text[512], buf[64];
    const char *def = config_default_text(o, buf, sizeof buf);
    if (o->short_name)
        snprintf(left, sizeof left, "  -%c, --%s%s%s", o->short_name, o->name, o->arg ? " " : "",
                 o->arg ? o->arg : "");
    else
        snprintf(left, sizeof left, "      --%s%s%s", o->name, o->arg ? " " : "",
                 o->arg ? o->arg : "");
    if (def && *def)
        snprintf(text, sizeof text, "%s [%s]", o->help, def);
    else
        snprintf(text, sizeof text, "%s", o->help);
    int width = printf("%s", left);
    if (width >= HELP_LEFT - 1) {
        printf("\n%*s", HELP_LEFT, "");
    } else {
        printf("%*s", HELP_LEFT - width, "");
    }
    print_wrapped(text, HELP_LEFT);
}

static void print_help(void)
{
    printf("Usage: resil-init [OPTIONS] [--] COMMAND [ARG...]\n"
           "       resil-init status|probe [--ready|--live]|restart|metrics [--state-dir DIR]\n"
           "       resil-init --check-config [OPTIONS] [--] [COMMAND...]\n"
           "Every option is also read from RESIL_<NAME> and from --config FILE (JSON).\n");
    const char *group = NULL;
    for (size_t i = 0; i < config_option_count; i++) {
        const struct config_option *o = &config_options[i];
        if (!group || strcmp(group, o->group) != 0) {
            group = o->group;
            printf("\n%s:\n", group);
        }
        print_option(o);
    }
    printf("\nExit: app's status, 128+S signal S, 137 killed, 69 unhealthy, 126/127 exec, "
           "2 usage, 70 internal.\n");
}

static int usage_error(const struct resil_config *cfg, const char *msg)
{
    log_setup(cfg->log_level, cfg->log_format);
    log_emit(LOG_LEVEL_ERROR, true, NULL, 0, "%s (see resil-init --help)", msg);
    return 2;
}

static int check_config(const struct resil_config *cfg)
{
    char *json = config_to_json(cfg);
    if (!json)
        return 70;
    puts(json);
    free(json);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "status") == 0)
        return status_command(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "probe") == 0)
        return status_probe_command(argc - 1, argv + 1);
    if (argc > 1 && (strcmp(argv[1], "restart") == 0 || strcmp(argv[1], "metrics") == 0))
        return control_command(argc - 1, argv + 1);
    /* Looked for among the options only, so that an app's own --help after
     * COMMAND reaches the app. */
    const struct config_option *action = config_early_action(argc - 1, argv + 1);
    if (action && strcmp(action->name, "help") == 0) {
        print_help();
        return 0;
    }
    if (action) {
        printf("resil-init %s\n", RESIL_VERSION);
        return 0;
    }

    struct resil_config cfg;
    char err[512];
    int code;
    if (config_load(&cfg, argc - 1, argv + 1, environ, err, sizeof err) < 0 ||
        (cfg.health_url && health_validate_url(cfg.health_url, err, sizeof err) < 0))
        code = usage_error(&cfg, err);
    else if (cfg.check_config)
        code = check_config(&cfg);
    else if (!cfg.command || !cfg.command[0])
        code = usage_error(&cfg, "no command given");
    else {
        log_setup(cfg.log_level, cfg.log_format);
        code = supervisor_run(&cfg, environ);
    }
    config_free(&cfg);
    return code;
}
