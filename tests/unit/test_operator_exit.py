"""How the operator's process ends once kopf has stopped: at once, its logs flushed, without the
interpreter's teardown (every module torn down, the heap collected: 16 s of a SIGTERM'd
operator's grace period on a node at a load average of 40) and without waiting for another
library's idle pool, whose thread held the exit for the full second it was joined."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROBE = """
import asyncio, atexit, logging, sys
from concurrent.futures import ThreadPoolExecutor
from autozero.controller.handlers import run_without_waiting

logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
foreign = ThreadPoolExecutor(max_workers=1)  # another library's pool, idle once its task ran
foreign.submit(lambda: None).result()
atexit.register(lambda: open(sys.argv[1], "w").write("the interpreter tore itself down"))

async def main():
    await asyncio.get_running_loop().run_in_executor(None, lambda: None)
    logging.getLogger("probe").info("kopf stopped")
    print("unflushed on purpose", end="")

run_without_waiting(main(), ThreadPoolExecutor(max_workers=2, thread_name_prefix="autozero"))
print("never printed: run_without_waiting returned")
"""


def test_the_process_ends_at_once_with_its_output_flushed(tmp_path: Path) -> None:
    marker = tmp_path / "torn-down"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(marker)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "kopf stopped\nunflushed on purpose", done.stdout
    assert not marker.exists(), marker.read_text()
    assert "exiting without waiting" not in done.stderr + done.stdout  # nothing was in a call
