// Module Tokenizers: see ARCHITECTURE.md for what it owns.
