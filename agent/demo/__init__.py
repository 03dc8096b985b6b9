"""``bm-agent demo``: emulator, simulated BMCs and an agent on embedded defaults."""
