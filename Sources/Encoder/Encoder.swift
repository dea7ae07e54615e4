// Module Encoder: see ARCHITECTURE.md for what it owns.
