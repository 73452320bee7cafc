/* A static, libc-free child that waits in pause(2) forever; any signal
 * with a default "terminate" action ends it. The many-children scenario
 * runs 10,000 of these so that spawning them costs no dynamic loading. */
void _start(void) {
    for (;;) {
#if defined(__x86_64__)
        __asm__ volatile("mov $34, %%eax\n\tsyscall" ::: "rax", "rcx", "r11", "memory");
#elif defined(__aarch64__)
        /* aarch64 has no pause(2): ppoll(NULL, 0, NULL, NULL) */
        __asm__ volatile("mov x8, #73\n\tmov x0, #0\n\tmov x1, #0\n\tmov x2, #0\n\tmov x3, #0\n\tsvc #0"
                         ::: "x0", "x1", "x2", "x3", "x8", "memory");
#else
#error "unsupported architecture"
#endif
    }
}
