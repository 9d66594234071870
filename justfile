# The chat backend's everyday commands. `just` lists them.
default:
    @just --list

# Run the server on the in-memory store (no set-up; nothing is kept)
run:
    cargo run -p chat-server

# Run the whole test suite (the same command CI runs)
test:
    cargo test --workspace

# Format the code
fmt:
    cargo fmt --all

# Check formatting and lints as CI does
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Everything CI runs, services included
ci:
    bash .ci/run
