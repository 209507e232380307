fn main() -> std::process::ExitCode {
    tracebridge::cli::main()
}
