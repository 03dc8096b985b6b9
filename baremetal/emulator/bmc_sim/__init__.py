"""Simulated BMCs on loopback: OpenIPMI's ``ipmi_sim`` and the project's pyghmi fake BMC.

- ``ipmisim``: start ``ipmi_sim`` peers (one process per BMC) with a stateful chassis
  helper (``chassis_helper.sh``, shipped as package data); knobs for IPMI 1.5 off, IPMI 2.0
  off, slow answers, dead or frozen BMCs.
- ``fakebmc``: a pyghmi-based BMC program (``python -m baremetal.emulator.bmc_sim.fakebmc``)
  with full boot-flag emulation and fault knobs, for machines without ``ipmi_sim``.
- ``fleet``: start N simulated BMCs of either kind behind one interface (the demo uses it).

They are emulators like the rest of ``baremetal.emulator``: the tests, the benchmarks and
``bm-agent demo`` run against them. They bind 127.0.0.1 only.
"""
