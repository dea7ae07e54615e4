// Module Store: see ARCHITECTURE.md for what it owns.
