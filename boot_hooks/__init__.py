"""Package boot_hooks."""
