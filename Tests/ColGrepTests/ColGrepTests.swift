// Tests for ColGrep.
