//! chat-auth (work in progress)
