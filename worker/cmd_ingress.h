/* cmd_ingress.h - `hsqb-worker ingress`: HubSpot's actionUrl and optionsUrl (worker/ingress.h). */
#ifndef HSQB_CMD_INGRESS_H
#define HSQB_CMD_INGRESS_H

/* argv[0] is "ingress". Returns an exit status (worker/exitcode.h). */
int cmd_ingress(int argc, char **argv, const char *version);

#endif
