/*
 * runtime/lib/cmdline.c - `key=value` lookup in the kernel command line.
 *
 * The command line is a list of words separated by spaces.  QEMU passes
 * the -append string (some loaders prefix the kernel file name, which is
 * simply another word).
 */
#include <rt/rt.h>

static int parse_uint(const char *p, const char *end, unsigned *out)
{
    unsigned v = 0, base = 10;
    if (end - p > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    }
    if (p == end)
        return 0;
    for (; p < end; p++) {
        unsigned d;
        if (*p >= '0' && *p <= '9')
            d = (unsigned)(*p - '0');
        else if (base == 16 && *p >= 'a' && *p <= 'f')
            d = (unsigned)(*p - 'a' + 10);
        else if (base == 16 && *p >= 'A' && *p <= 'F')
            d = (unsigned)(*p - 'A' + 10);
        else
            return 0;
        v = v * base + d;
    }
    *out = v;
    return 1;
}

unsigned rt_cmdline_uint(const char *key, unsigned def)
{
    const char *p = rt_cmdline();
    size_t klen = strlen(key);

    while (*p) {
        while (*p == ' ')
            p++;
        const char *word = p;
        while (*p && *p != ' ')
            p++;
        if ((size_t)(p - word) > klen && strncmp(word, key, klen) == 0 && word[klen] == '=') {
            unsigned v;
            if (parse_uint(word + klen + 1, p, &v))
                return v;
        }
    }
    return def;
}

unsigned rt_cmdline_n(unsigned def)
{
    return rt_cmdline_uint("n", def);
}
