/// mimalloc instead of the system allocator: decoding and encoding OTLP is
/// allocation-heavy (every attribute key and value is its own string), and
/// glibc's malloc/free took about a third of the forwarding CPU in a perf
/// profile (README, "Performance").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's `mimalloc.h` (v2 and v3 alike) of
/// the exactly pinned libmimalloc-sys, which exports no name for it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Milliseconds before mimalloc gives freed pages back to the OS. mimalloc
/// v3's default of 1000 kept a second of churn resident: at saturation the
/// daemon's peak RSS measured 20–50 MiB higher than with 10 (v2's default);
/// the price is page faults: a few percent of the CPU at 100 spans per
/// request, about a tenth at 1000 (README, "Performance", where longer
/// delays are measured against their memory).
const PURGE_DELAY_MS: std::ffi::c_long = 10;

fn main() -> std::process::ExitCode {
    keep_memory_resident_only_while_used();
    tracebridge::cli::main()
}

/// Memory settings that bound RSS to what the daemon holds:
/// - transparent huge pages off for this process: with THP, one touched
///   byte keeps 2 MiB resident, which doubled the idle RSS (24 → 14 MiB
///   without) and added 25–30 MiB at saturation;
/// - a short purge delay (above), unless the operator set
///   `MIMALLOC_PURGE_DELAY` (mimalloc's own variable, which then wins).
fn keep_memory_resident_only_while_used() {
    // SAFETY: prctl(PR_SET_THP_DISABLE) takes plain integers and touches no
    // memory of ours; its failure (old kernel) only leaves THP as it was.
    #[cfg(target_os = "linux")]
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one integer option; called before the runtime starts
        // any thread, as mimalloc asks (its options are not thread safe).
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
}
