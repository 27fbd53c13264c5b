/*
 * runtime/lib/printf.c - minimal printf family over rt_console_write().
 *
 * One formatter (format()) writes through a small sink; printf() buffers a
 * line's worth of output before handing it to the console, snprintf() writes
 * into a caller buffer.  No floating point, no 64-bit conversions.
 */
#include <rt/platform.h>
#include <rt/rt.h>

struct sink {
    void (*put)(struct sink *s, char c);
    char *buf;          /* snprintf: destination; printf: staging buffer */
    size_t size;        /* capacity of buf */
    size_t len;         /* bytes stored in buf */
    int count;          /* characters produced in total */
};

/* ---- sinks ---- */

static void console_flush(struct sink *s)
{
    if (s->len) {
        rt_console_write(s->buf, s->len);
        s->len = 0;
    }
}

static void console_put(struct sink *s, char c)
{
    s->buf[s->len++] = c;
    if (s->len == s->size || c == '\n')
        console_flush(s);
}

static void string_put(struct sink *s, char c)
{
    if (s->len + 1 < s->size)
        s->buf[s->len++] = c;
}

/* ---- formatter ---- */

static void emit(struct sink *s, char c)
{
    s->put(s, c);
    s->count++;
}

static void pad(struct sink *s, char c, int n)
{
    while (n-- > 0)
        emit(s, c);
}

/* Emit `digits` (a string of length n) honouring width and flags. */
static void emit_field(struct sink *s, const char *sign, const char *digits, int n,
                       int width, int left, int zero)
{
    int slen = sign ? (int)strlen(sign) : 0;
    int fill = width - n - slen;

    if (!left && !zero)
        pad(s, ' ', fill);
    while (sign && *sign)
        emit(s, *sign++);
    if (!left && zero)
        pad(s, '0', fill);
    while (n--)
        emit(s, *digits++);
    if (left)
        pad(s, ' ', fill);
}

static int utoa(char *end, uint32_t v, unsigned base, int upper)
{
    const char *dig = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    int n = 0;
    do {
        *--end = dig[v % base];
        v /= base;
        n++;
    } while (v);
    return n;
}

static void format(struct sink *s, const char *fmt, va_list ap)
{
    char tmp[12];
    char *end = tmp + sizeof(tmp);

    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            emit(s, *fmt);
            continue;
        }
        fmt++;
        int left = 0, zero = 0, width = 0;
        for (;; fmt++) {
            if (*fmt == '-')
                left = 1;
            else if (*fmt == '0')
                zero = 1;
            else
                break;
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l' || *fmt == 'z')
            fmt++;
        if (left)
            zero = 0;

        switch (*fmt) {
        case 'c':
            tmp[0] = (char)va_arg(ap, int);
            emit_field(s, NULL, tmp, 1, width, left, 0);
            break;
        case 's': {
            const char *str = va_arg(ap, const char *);
            if (!str)
                str = "(null)";
            emit_field(s, NULL, str, (int)strlen(str), width, left, 0);
            break;
        }
        case 'd':
        case 'i': {
            int32_t v = va_arg(ap, int32_t);
            uint32_t mag = v < 0 ? -(uint32_t)v : (uint32_t)v;
            int n = utoa(end, mag, 10, 0);
            emit_field(s, v < 0 ? "-" : NULL, end - n, n, width, left, zero);
            break;
        }
        case 'u': {
            int n = utoa(end, va_arg(ap, uint32_t), 10, 0);
            emit_field(s, NULL, end - n, n, width, left, zero);
            break;
        }
        case 'x':
        case 'X': {
            int n = utoa(end, va_arg(ap, uint32_t), 16, *fmt == 'X');
            emit_field(s, NULL, end - n, n, width, left, zero);
            break;
        }
        case 'p': {
            int n = utoa(end, (uint32_t)(uintptr_t)va_arg(ap, void *), 16, 0);
            emit_field(s, "0x", end - n, n, width, left, zero);
            break;
        }
        case '%':
            emit(s, '%');
            break;
        case '\0':
            return;             /* stray '%' at the end */
        default:                /* unknown conversion: print it verbatim */
            emit(s, '%');
            emit(s, *fmt);
            break;
        }
    }
}

/* ---- public API ---- */

int vprintf(const char *fmt, va_list ap)
{
    char buf[128];
    struct sink s = { console_put, buf, sizeof(buf), 0, 0 };
    format(&s, fmt, ap);
    console_flush(&s);
    return s.count;
}

int printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vprintf(fmt, ap);
    va_end(ap);
    return n;
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct sink s = { string_put, buf, size, 0, 0 };
    format(&s, fmt, ap);
    if (size)
        buf[s.len] = '\0';
    return s.count;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

int putchar(int c)
{
    char ch = (char)c;
    rt_console_write(&ch, 1);
    return (unsigned char)ch;
}

int puts(const char *s)
{
    rt_console_write(s, strlen(s));
    rt_console_write("\n", 1);
    return 0;
}
