/* The smallest possible child: a static binary without libc whose entry
 * point only calls exit_group(0). Built by the harness with
 * `gcc -static -nostdlib -O2`. Measures what spawning costs the parent and
 * the kernel, without the dynamic loader. x86_64 and aarch64. */
void _start(void) {
#if defined(__x86_64__)
    __asm__ volatile("mov $231, %eax\n\txor %edi, %edi\n\tsyscall");
#elif defined(__aarch64__)
    __asm__ volatile("mov x8, #94\n\tmov x0, #0\n\tsvc #0");
#else
#error "unsupported architecture"
#endif
    for (;;) {
    }
}
