/* A static, libc-free child that ignores SIGTERM, then says so by writing
 * one byte ('r') to its stdout, then waits forever (pause(2); ppoll on
 * aarch64). Only SIGKILL (or another terminating signal) ends it. The
 * supervise-ignore-term scenario reads one byte per child before it times
 * Supervisor::shutdown(), so every child has ignored TERM by then.
 *
 * Everything it touches is static data: no stack arrays, so no stack
 * protector (which would need libc's TLS setup). Exit status 1 if
 * rt_sigaction fails. Built by the harness with `gcc -static -nostdlib -O2`. */

/* The kernel's struct sigaction: handler, flags, restorer, mask (the same
 * layout on x86_64 and aarch64). Handler 1 = SIG_IGN. */
static const unsigned long ignore[4] = {1, 0, 0, 0};
static const char ready = 'r';

#if defined(__x86_64__)
#define SYS_WRITE 1
#define SYS_RT_SIGACTION 13
#define SYS_EXIT_GROUP 231

static long sys4(long n, long a, long b, long c, long d) {
    long ret;
    register long r10 __asm__("r10") = d;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10)
                     : "rcx", "r11", "memory");
    return ret;
}

static void wait_forever(void) {
    for (;;) {
        sys4(34 /* pause */, 0, 0, 0, 0);
    }
}
#elif defined(__aarch64__)
#define SYS_WRITE 64
#define SYS_RT_SIGACTION 134
#define SYS_EXIT_GROUP 94

static long sys4(long n, long a, long b, long c, long d) {
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
    return x0;
}

static void wait_forever(void) {
    for (;;) {
        sys4(73 /* ppoll(NULL, 0, NULL, NULL) */, 0, 0, 0, 0);
    }
}
#else
#error "unsupported architecture"
#endif

void _start(void) {
    /* rt_sigaction(SIGTERM, &ignore, NULL, sizeof(sigset_t) = 8) */
    if (sys4(SYS_RT_SIGACTION, 15, (long)ignore, 0, 8) != 0) {
        sys4(SYS_EXIT_GROUP, 1, 0, 0, 0);
    }
    sys4(SYS_WRITE, 1, (long)&ready, 1, 0);
    wait_forever();
}
