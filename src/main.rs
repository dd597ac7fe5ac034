//! The binary: the process's allocator, then the command line (`saml_validator::cli`).

use std::process::ExitCode;

// mimalloc for the whole process, libxml2's and OpenSSL's malloc included (the `override`
// feature replaces the C symbols): a validation makes a few hundred small allocations, mostly
// libxml2 nodes, and glibc's allocator was 12 % of the server's CPU under load (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    saml_validator::cli::main()
}
