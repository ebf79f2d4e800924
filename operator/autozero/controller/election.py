"""High availability: replicas elect one leader through a coordination.k8s.io Lease, and only the
leader acts. This is the kubernetes client's own leader election (client-go's algorithm); a
replica that loses the lease exits, so its Deployment restarts it as a follower, as client-go
controllers do. Followers keep watching, so a takeover starts with every policy already known,
and resumes from the state in the policies' status.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ElectionConfig:
    namespace: str
    name: str = "autozero-leader"
    identity: str = ""
    lease_seconds: int = 15
    renew_seconds: int = 10
    retry_seconds: int = 2


def start_election(
    config: ElectionConfig,
    on_leading: Callable[[], None],
    on_lost: Callable[[], None] | None = None,
) -> threading.Thread:
    """Campaign in a background thread; `on_leading` runs once this replica holds the lease."""
    from kubernetes.leaderelection import electionconfig, leaderelection
    from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

    identity = config.identity or f"{os.uname().nodename}-{os.getpid()}"

    def lost() -> None:
        log.error(
            "lost the leader lease %s/%s: exiting so that this replica restarts as a follower",
            config.namespace,
            config.name,
        )
        if on_lost is not None:
            on_lost()
        os._exit(1)

    lock = LeaseLock(config.name, config.namespace, identity)  # type: ignore[no-untyped-call]
    settings = electionconfig.Config(  # type: ignore[no-untyped-call]
        lock,
        lease_duration=config.lease_seconds,
        renew_deadline=config.renew_seconds,
        retry_period=config.retry_seconds,
        onstarted_leading=on_leading,
        onstopped_leading=lost,
    )
    election = leaderelection.LeaderElection(settings)  # type: ignore[no-untyped-call]
    thread = threading.Thread(target=election.run, name="leader-election", daemon=True)
    thread.start()
    log.info("campaigning for lease %s/%s as %s", config.namespace, config.name, identity)
    return thread
