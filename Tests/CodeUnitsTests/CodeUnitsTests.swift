// Tests for CodeUnits.
