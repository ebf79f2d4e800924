"""`gce-emulator --host 127.0.0.1 --port N`: serve the emulator until interrupted."""

from __future__ import annotations

import argparse
import json
import signal
import sys

from gce_emulator.server import EmulatorServer
from gce_emulator.world import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gce-emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--operation-seconds", type=float, default=0.5)
    parser.add_argument("--instance-boot-seconds", type=float, default=1.0)
    parser.add_argument("--instance-resume-seconds", type=float, default=0.3)
    parser.add_argument("--instance-start-seconds", type=float, default=0.6)
    parser.add_argument("--instance-suspend-seconds", type=float, default=0.3)
    parser.add_argument("--requests-per-minute", type=int, default=None)
    parser.add_argument(
        "--instance-command",
        default=None,
        help="a JSON list: the command each RUNNING instance runs",
    )
    args = parser.parse_args(argv)
    settings = Settings(
        operation_seconds=args.operation_seconds,
        instance_boot_seconds=args.instance_boot_seconds,
        instance_resume_seconds=args.instance_resume_seconds,
        instance_start_seconds=args.instance_start_seconds,
        instance_suspend_seconds=args.instance_suspend_seconds,
        requests_per_minute=args.requests_per_minute,
        instance_command=json.loads(args.instance_command) if args.instance_command else None,
    )
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)  # before threads start: they inherit it
    server = EmulatorServer(args.host, args.port, settings).start()
    print(
        f"gce-emulator listening on {server.url} (api_endpoint {server.api_endpoint})", flush=True
    )
    signal.sigwait(stop_signals)
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
