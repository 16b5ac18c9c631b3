/* utf8.c - see utf8.h. A cut at n is on a boundary when s[n] is not a continuation byte
 * (10xxxxxx): the byte after the cut starts a new character. */
#include "common/utf8.h"

#include <string.h>

static int continuation(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

size_t utf8_cut_len(const char *s, size_t len, size_t max)
{
    size_t n;

    if (len <= max)
        return len;
    n = max;
    while (n > 0 && continuation((unsigned char)s[n]))
        n--;
    return n;
}

void utf8_truncate(char *s, size_t max)
{
    s[utf8_cut_len(s, strnlen(s, max + 1), max)] = '\0';
}

size_t utf8_copy(char *out, size_t outsz, const char *s, size_t max)
{
    size_t n;

    if (!s)
        s = "";
    if (outsz - 1 < max)
        max = outsz - 1;
    n = utf8_cut_len(s, strnlen(s, max + 1), max);
    memcpy(out, s, n);
    out[n] = '\0';
    return n;
}

size_t utf8_trim_partial(const char *s, size_t n)
{
    size_t i = n, need;
    unsigned char lead;

    /* step back over at most three continuation bytes to the sequence's lead byte */
    while (i > 0 && continuation((unsigned char)s[i - 1]) && n - i < 3)
        i--;
    if (i == 0)
        return n;
    lead = (unsigned char)s[i - 1];
    need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return lead >= 0xC0 && n - (i - 1) < need ? i - 1 : n;
}
