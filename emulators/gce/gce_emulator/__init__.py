"""A local emulator of the Compute Engine REST subset autozero uses (managed instance groups,
autoscalers, standby pools of suspended and stopped instances, zone and region operations), for
tests and the demo. No emulator of Compute Engine exists anywhere else; this one is driven by the
real google-api-python-client."""

from gce_emulator.server import Emulator, EmulatorServer
from gce_emulator.world import Settings

__all__ = ["Emulator", "EmulatorServer", "Settings"]
