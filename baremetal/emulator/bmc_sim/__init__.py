"""Simulated BMCs on loopback: OpenIPMI's ``ipmi_sim`` and the project's pyghmi fake BMC.

- ``ipmisim``: start ``ipmi_sim`` peers (one process per BMC) with a stateful chassis
  helper (``chassis_helper.sh``, shipped as package data); knobs for IPMI 1.5 off, IPMI 2.0
  off, slow answers, dead or frozen BMCs.
- ``fakebmc``: a pyghmi-based BMC program (``python -m baremetal.emulator.bmc_sim.fakebmc``)
  with full boot-flag emulation and fault knobs, for machines without ``ipmi_sim``.
- ``fleet``: start N simulated BMCs of either kind behind one interface (the demo uses it);
- ``procs``: ``ChildProcess`` (log file, stop by PID, optional die-with-parent) and
  ``free_port()`` (free for TCP and UDP on loopback).

They are emulators like the rest of ``baremetal.emulator``: the tests (through the thin
re-exports in ``tests/peers``), the benchmarks and ``bm-agent demo`` run against them. They
bind 127.0.0.1 only. ``chassis_helper.sh`` is package data (run through ``/bin/sh``).
"""
