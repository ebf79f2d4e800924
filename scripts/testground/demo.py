"""The local demo's entry point (`make demo`).

The demo itself (a queue fills, GCE-emulated workers wake, drain, and go back to zero) arrives with
the standalone runner and the GCE emulator. Until then this starts the real servers the demo needs,
checks that they answer, says so, and stops them.
"""

from __future__ import annotations

import sys
import time

from gce_emulator import EmulatorServer

from testground.redis_server import RedisServer


def main() -> int:
    started = time.monotonic()
    redis = RedisServer()
    seconds = redis.start()
    emulator = EmulatorServer().start()
    try:
        print(f"[demo] redis-server ready on {redis.url} in {seconds:.1f}s")
        print(f"[demo] gce-emulator ready on {emulator.api_endpoint}")
        print("[demo] not yet: the scale-to-zero demo lands with the standalone runner (issue 9).")
    finally:
        emulator.stop()
        redis.stop()
    print(f"[demo] done in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
