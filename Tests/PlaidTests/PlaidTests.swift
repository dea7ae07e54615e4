// Tests for Plaid.
