"""How long a SIGTERM'd operator takes to exit on a loaded node: `--load` processes spin on the
machine's cores while an operator is started again and again and sent SIGTERM some seconds into
its life; each exit is timed (Kubernetes sends SIGKILL after the Pod's grace period, 30 s by
default). A process still running after 30 s has its threads dumped with py-spy if `--py-spy`
names one.

The test ground is the chaos campaign's (benchmarks/chaos.py): a kube-apiserver, Redis,
RabbitMQ, FerretDB, the GCE emulator and the groups the operator and `autozero run` drive.

Run: .venv/bin/python benchmarks/shutdown_bench.py [--load 40] [--trials 4] [--after 45 90]
     [--tree DIR] [--py-spy PATH]
"""

from __future__ import annotations

import argparse
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from chaos import STOP_GRACE, Campaign  # noqa: E402
from procstats import load_average  # noqa: E402

SPIN = "while True: pass"


def dump(py_spy: str | None, pid: int) -> str:
    if py_spy is None:
        return "(no --py-spy: no dump)"
    found = subprocess.run([py_spy, "dump", "--pid", str(pid)], capture_output=True, text=True)
    return found.stdout or found.stderr


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--load", type=int, default=40, help="spinning processes")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument(
        "--after", type=float, nargs=2, default=(45.0, 90.0), metavar=("MIN", "MAX")
    )
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--tree", type=Path, default=ROOT, help="run this checkout's operator")
    parser.add_argument("--py-spy", default=None, help="a py-spy binary, to dump a slow exit")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    out = Path(tempfile.mkdtemp(prefix="autozero-shutdown-"))
    campaign = Campaign(0, 0, 4.0, out, args.tree)
    spinners: list[subprocess.Popen[bytes]] = []
    exits: list[float] = []
    try:
        campaign.start()
        campaign.wave()
        spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(args.load)]
        for trial in range(args.trials):
            campaign.children["operator"].kill()
            campaign.children["operator"].wait()
            # Not waiting for it to serve: a loaded node may take a minute to get it there, and
            # the SIGTERM may come at any point of its life.
            campaign.start_child("operator", wait=False)
            operator = campaign.children["operator"]
            after = rng.uniform(*args.after)
            time.sleep(after)
            load = load_average()[0]
            sent = time.time()
            operator.send_signal(signal.SIGTERM)
            try:
                operator.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                print(f"trial {trial}: still running {STOP_GRACE:g} s after SIGTERM; its threads:")
                print(dump(args.py_spy, operator.pid), flush=True)
                operator.wait(timeout=300)
            exits.append(time.time() - sent)
            print(
                f"trial {trial}: SIGTERM {after:.1f} s after the start (load average {load:.1f}), "
                f"exited {exits[-1]:.1f} s later, code {operator.returncode}",
                flush=True,
            )
    finally:
        for spinner in spinners:
            spinner.kill()
        campaign.close()
    print(
        f"exits after SIGTERM: median {statistics.median(exits):.1f} s, max {max(exits):.1f} s "
        f"(log: {out / 'operator.log'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
