//! The `suanwang` binary. Exit codes: 0 success, 1 runtime failure (bad input
//! file, failed run), 2 bad command line (from clap).

fn main() -> std::process::ExitCode {
    suanwang_cli::main()
}
