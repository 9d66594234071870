//! chat-store-memory (work in progress)
