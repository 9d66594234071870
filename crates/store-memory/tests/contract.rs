//! The memory store against the ports' whole contract suite.

use chat_store_memory::MemoryStore;

chat_ports::contract_tests!(async { MemoryStore::new_stores() });
