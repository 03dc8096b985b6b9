"""Re-export of ``baremetal.emulator.bmc_sim.fakebmc`` (moved into the package for the demo).

``python -m tests.peers.fakebmc ...`` still runs the fake BMC.
"""

from __future__ import annotations

from baremetal.emulator.bmc_sim.fakebmc import *  # noqa: F403
from baremetal.emulator.bmc_sim.fakebmc import main

if __name__ == "__main__":
    main()
