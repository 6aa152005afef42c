//! `rechunk`: rewrite chunked N-d arrays into a new chunk layout within a memory limit. The
//! command line lives in the library ([`rechunker::cli`]), shared with the Python package.

fn main() -> std::process::ExitCode {
    rechunker::cli::main_with_args(std::env::args().collect())
}
