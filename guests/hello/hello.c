/*
 * hello - the smallest guest: one line on the serial port, exit code 0.
 */
#include <rt/rt.h>

int main(void)
{
    printf("Hello from a dbt guest kernel!\n");
    return 0;
}
