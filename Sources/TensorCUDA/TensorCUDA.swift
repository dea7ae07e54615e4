// Module TensorCUDA: see ARCHITECTURE.md for what it owns.
