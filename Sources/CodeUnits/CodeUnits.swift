// Module CodeUnits: see ARCHITECTURE.md for what it owns.
