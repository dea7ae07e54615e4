// Tests for Encoder.
