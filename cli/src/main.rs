//! `tapsign`: a thin shell over `tapsign_cli::run`.

fn main() -> std::process::ExitCode {
    tapsign_cli::main()
}
