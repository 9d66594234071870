# The chat backend's everyday commands. `just` lists them.

# `docker compose` where the plugin is installed, else the standalone `docker-compose`
compose := `docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose`

default:
    @just --list

# Run the server on the in-memory store (no set-up; nothing is kept)
run:
    cargo run -p chat-server

# Run the whole test suite (the README's test command, as CI runs it)
test:
    bash .ci/test

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

# Start PostgreSQL, Redis and two server nodes in Docker (docker/compose.yaml); http://127.0.0.1:8080 and :8081
up:
    {{compose}} -f docker/compose.yaml up -d --build

# Stop the Docker stack (data stays in the pgdata volume)
down:
    {{compose}} -f docker/compose.yaml down

# Run the server on the host against a local PostgreSQL (no Docker); DB defaults to chat_dev
dev-db db="chat_dev":
    psql -h 127.0.0.1 -U postgres -tc "SELECT 1 FROM pg_database WHERE datname = '{{db}}'" | grep -q 1 \
      || psql -h 127.0.0.1 -U postgres -c 'CREATE DATABASE "{{db}}"'
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/{{db}} cargo run -p chat-server

# Apply pending migrations to $DATABASE_URL and exit
migrate:
    cargo run -p chat-server -- migrate
