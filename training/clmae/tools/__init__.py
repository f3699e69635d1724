"""Command-line tools around bundles (reference outputs for the service's tests)."""
