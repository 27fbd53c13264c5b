/*
 * runtime/pc/serial.c - polled 16550 UART on COM1.
 */
#include <rt/io.h>
#include <rt/serial.h>

void serial_init(void)
{
    outb(COM1_BASE + UART_IER, 0x00);   /* no interrupts */
    outb(COM1_BASE + UART_LCR, 0x80);   /* DLAB=1: program the divisor */
    outb(COM1_BASE + UART_DLL, 0x01);   /* 115200 baud */
    outb(COM1_BASE + UART_DLM, 0x00);
    outb(COM1_BASE + UART_LCR, 0x03);   /* DLAB=0, 8 data bits, no parity, 1 stop */
    outb(COM1_BASE + UART_FCR, 0xC7);   /* FIFOs on and cleared, 14-byte trigger */
    outb(COM1_BASE + UART_MCR, 0x03);   /* DTR, RTS */
}

void serial_putc(char c)
{
    while (!(inb(COM1_BASE + UART_LSR) & UART_LSR_THRE))
        ;
    outb(COM1_BASE + UART_THR, (uint8_t)c);
}

void serial_write(const char *s, size_t n)
{
    while (n--)
        serial_putc(*s++);
}
