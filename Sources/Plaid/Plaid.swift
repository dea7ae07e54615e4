// Module Plaid: see ARCHITECTURE.md for what it owns.
