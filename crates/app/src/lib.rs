//! chat-app (work in progress)
