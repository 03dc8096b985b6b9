"""bm-node-emulator: a faithful emulator of the DBC bare-metal node."""
