/* ingress.c - being written. */
#include "worker/ingress.h"
