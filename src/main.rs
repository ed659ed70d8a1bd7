//! The `understudy` binary: parses arguments and hands over to the library.

fn main() {
    std::process::exit(understudy::cli::main());
}
