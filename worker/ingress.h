/* ingress.h - the HTTP side of `hsqb-worker ingress` (being written). */
#ifndef HSQB_INGRESS_H
#define HSQB_INGRESS_H
#endif
