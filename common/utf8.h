/* utf8.h - cutting text to a byte limit without splitting a UTF-8 character.
 *
 * Owns: nothing. Every limit the services impose (QBO's 100-byte names, 4,000-byte
 * descriptions, 21-byte references, our result messages and metric labels) is a byte
 * count, while the text is UTF-8: cutting in the middle of a sequence makes the JSON
 * sent invalid or shows a replacement character. These helpers cut at the last
 * character boundary at or before the limit.
 *
 * The input is expected to be valid UTF-8 (the JSON parsers guarantee it for everything
 * read from HubSpot or QBO); on invalid input they still never read past the string and
 * never write past out, they only may cut next to a stray byte.
 *
 * Thread-safety: pure functions.
 */
#ifndef HSQB_UTF8_H
#define HSQB_UTF8_H

#include <stddef.h>

/* The length of the longest prefix of s (len bytes) that is at most max bytes and does
 * not end inside a UTF-8 sequence. len <= max returns len. */
size_t utf8_cut_len(const char *s, size_t len, size_t max);

/* Cut the NUL-terminated s in place to at most max bytes on a character boundary. */
void utf8_truncate(char *s, size_t max);

/* Copy at most max bytes of s (NUL-terminated; NULL counts as "") into out, cut on a
 * character boundary and also to outsz - 1 bytes (outsz >= 1). Returns the bytes
 * copied (out is NUL-terminated). */
size_t utf8_copy(char *out, size_t outsz, const char *s, size_t max);

/* For text already cut blindly at n bytes (by a copy into a fixed buffer): the length of
 * s[0..n) without a trailing incomplete sequence. Reads only s[0..n). */
size_t utf8_trim_partial(const char *s, size_t n);

/* Untrusted text as an operator's terminal may show it, into out (outsz >= 1 bytes,
 * always NUL-terminated; what does not fit is left off at a whole unit). Printable
 * characters of valid UTF-8 pass unchanged, so names read as names; every byte of
 * anything else is written \xNN: C0 and C1 controls and DEL (escape sequences), invalid
 * UTF-8 (stray, overlong, surrogate or truncated sequences), and the invisible format
 * characters that reorder or hide text (bidi marks, embeddings, overrides and isolates,
 * zero-width characters, line/paragraph separators, BOM). A backslash is written \\,
 * so the escapes are unambiguous. s NULL is "". Returns out. The one rule for every
 * print of untrusted text by the hsqb-worker subcommands. */
const char *utf8_printable(const char *s, char *out, size_t outsz);

#endif
