/* utf8.c - see utf8.h. A cut at n is on a boundary when s[n] is not a continuation byte
 * (10xxxxxx): the byte after the cut starts a new character. */
#include "common/utf8.h"

#include <stdint.h>
#include <stdio.h>
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

/* The code point of the well-formed UTF-8 sequence at s (n bytes available) into *cp and
 * its length, or 0 when the bytes there are not one (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF). */
static size_t decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    uint32_t v, min;
    size_t len, i;

    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        len = 2, v = s[0] & 0x1Fu, min = 0x80;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        len = 3, v = s[0] & 0x0Fu, min = 0x800;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        len = 4, v = s[0] & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if (!continuation(s[i]))
            return 0;
        v = v << 6 | (s[i] & 0x3Fu);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

/* Controls, and the format characters that change how the text around them shows. */
static int hidden(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x061C || cp == 0x180E ||
           (cp >= 0x200B && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202E) ||
           (cp >= 0x2060 && cp <= 0x206F) || cp == 0xFEFF;
}

const char *utf8_printable(const char *s, char *out, size_t outsz)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t left = strlen((const char *)p), o = 0, k, i;
    uint32_t cp = 0;

    while (left > 0) {
        k = decode(p, left, &cp);
        if (k && !hidden(cp) && cp != '\\') {
            if (o + k >= outsz)
                break;
            memcpy(out + o, p, k);
            o += k;
        } else if (k == 1 && cp == '\\') {
            if (o + 2 >= outsz)
                break;
            memcpy(out + o, "\\\\", 2);
            o += 2;
        } else {
            k = k ? k : 1; /* a hidden character: all its bytes; else the one bad byte */
            if (o + 4 * k >= outsz)
                break;
            for (i = 0; i < k; i++)
                o += (size_t)snprintf(out + o, outsz - o, "\\x%02x", p[i]);
        }
        p += k;
        left -= k;
    }
    out[o] = '\0';
    return out;
}
