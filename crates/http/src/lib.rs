//! chat-http (work in progress)
