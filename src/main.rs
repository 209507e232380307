/// mimalloc instead of the system allocator: decoding and encoding OTLP is
/// allocation-heavy (every attribute key and value is its own string), and
/// glibc's malloc/free took about a third of the forwarding CPU in a perf
/// profile (README, "Performance").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tracebridge::cli::main()
}
