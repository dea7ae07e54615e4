// Tests for TensorCUDA.
