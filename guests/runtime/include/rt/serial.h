/*
 * rt/serial.h - 16550 UART driver for COM1 (runtime/pc/serial.c).
 *
 * Polled transmit only: before each byte the line status register (base+5)
 * is read until bit 5 (THR empty) is set, then the byte is written to the
 * transmit holding register (base+0).
 */
#ifndef RT_SERIAL_H
#define RT_SERIAL_H

#include <stddef.h>

#define COM1_BASE      0x3F8
#define UART_THR       0      /* transmit holding register (DLAB=0) */
#define UART_IER       1      /* interrupt enable (DLAB=0) */
#define UART_DLL       0      /* divisor latch low (DLAB=1) */
#define UART_DLM       1      /* divisor latch high (DLAB=1) */
#define UART_FCR       2      /* FIFO control (write) */
#define UART_LCR       3      /* line control */
#define UART_MCR       4      /* modem control */
#define UART_LSR       5      /* line status */
#define UART_LSR_THRE  0x20   /* transmit holding register empty */

void serial_init(void);          /* 115200 8N1, FIFOs on, interrupts off */
void serial_putc(char c);        /* raw byte, no newline translation */
void serial_write(const char *s, size_t n);

#endif /* RT_SERIAL_H */
