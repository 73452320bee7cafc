// Shared by the helper programs (included with `include!`): pin this process
// to the vCPU named by `BENCH_CPU`, if set.

/// Pins the calling process to the CPU in `BENCH_CPU` (a number), if set.
fn pin_from_env() {
    let Some(cpu) = std::env::var_os("BENCH_CPU") else {
        return;
    };
    let Some(cpu) = cpu
        .to_str()
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|&c| c < 1024)
    else {
        return;
    };
    // SAFETY: `cpu_set_t` is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid cpu_set_t and `cpu` < 1024 = CPU_SETSIZE
    // (checked above).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: pid 0 is this thread; `set` is valid for its size.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        eprintln!("bench helper: sched_setaffinity({cpu}) failed: {}", std::io::Error::last_os_error());
    }
}
