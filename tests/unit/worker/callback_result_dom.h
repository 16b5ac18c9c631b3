/* callback_result_dom.h - the former json-c reader of results, the reference the tape
 * reader is tested against (tests only; see callback_result_dom.c). Same contract as
 * callback_result_read() in worker/callback_result.h. */
#ifndef HSQB_TEST_CALLBACK_RESULT_DOM_H
#define HSQB_TEST_CALLBACK_RESULT_DOM_H

#include "worker/callback_result.h"

enum callback_read callback_result_read_dom(const char *buf, size_t len, const char *app_url,
                                            struct callback_completion *out, char *why,
                                            size_t whysz);

#endif
