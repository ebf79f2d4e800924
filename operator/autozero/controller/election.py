"""High availability: replicas elect one leader through a coordination.k8s.io Lease, and only the
leader acts. This is the kubernetes client's own leader election (client-go's algorithm); a
replica that loses the lease exits, so its Deployment restarts it as a follower, as client-go
controllers do. Followers keep watching, so a takeover starts with every policy already known,
and resumes from the state in the policies' status.

The client's lease lock handles only the apiserver's own errors; a refused or reset connection
would end its thread, leaving a follower that never campaigns again, or a leader that stops
renewing while it goes on acting. So every lease call here has a timeout and turns a connection
error into the failed try the election already retries, and anything else that ends the
campaign ends the process.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ElectionConfig:
    namespace: str
    name: str = "autozero-leader"
    identity: str = ""
    lease_seconds: int = 15
    renew_seconds: int = 10
    retry_seconds: int = 2


LEASE_CALL_TIMEOUT = 5.0  # seconds; under the renew deadline, so a hung call cannot outlive it


class _LeaseCalls:
    """The lock's CoordinationV1Api, with a timeout on every call and connection errors as
    ApiExceptions (status 0, no body), which the election counts as a failed try."""

    def __init__(self, api: Any, timeout: float) -> None:
        self._api, self._timeout = api, timeout

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._api, name)

        def guarded(*args: Any, **kwargs: Any) -> Any:
            from kubernetes.client.exceptions import ApiException
            from urllib3.exceptions import HTTPError

            kwargs.setdefault("_request_timeout", self._timeout)
            try:
                return call(*args, **kwargs)
            except HTTPError as exc:
                raise ApiException(status=0, reason=f"apiserver unreachable: {exc}") from exc

        return guarded


def lease_api(api: Any | None = None) -> Any:
    """A CoordinationV1Api whose calls are tried once: the client's default three retries (after
    a read timeout too) would stretch a hung call to four timeouts, past the renew deadline.
    `api`: the ApiClient whose configuration and user agent to keep (else the default's)."""
    from kubernetes import client

    if api is None:
        configuration = client.Configuration.get_default_copy()
    else:
        configuration = copy.deepcopy(api.configuration)
    configuration.retries = False
    once = client.ApiClient(configuration)
    if api is not None:
        once.user_agent = api.user_agent
    return client.CoordinationV1Api(once)


def default_identity() -> str:
    """This replica's name in the lease: its Pod's (the chart sets $POD_NAME), else the host,
    the PID and a random suffix. Host and PID alone are not unique: two replicas with
    hostNetwork on one node share the host name, and each is PID 1 in its container."""
    pod = os.environ.get("POD_NAME")
    if pod:
        return pod
    return f"{os.uname().nodename}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def start_election(
    config: ElectionConfig,
    on_leading: Callable[[], None],
    on_lost: Callable[[], None] | None = None,
) -> threading.Thread:
    """Campaign in a background thread; `on_leading` runs once this replica holds the lease."""
    from kubernetes.leaderelection import electionconfig, leaderelection
    from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

    identity = config.identity or default_identity()

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
    lock.api_instance = _LeaseCalls(lease_api(), LEASE_CALL_TIMEOUT)  # type: ignore[assignment]
    settings = electionconfig.Config(  # type: ignore[no-untyped-call]
        lock,
        lease_duration=config.lease_seconds,
        renew_deadline=config.renew_seconds,
        retry_period=config.retry_seconds,
        onstarted_leading=on_leading,
        onstopped_leading=lost,
    )
    election = leaderelection.LeaderElection(settings)  # type: ignore[no-untyped-call]

    def campaign() -> None:
        try:
            election.run()  # type: ignore[no-untyped-call]
        except Exception:  # the campaign cannot go on: neither may this replica
            log.exception("leader election failed: exiting so that this replica restarts")
            os._exit(1)

    thread = threading.Thread(target=campaign, name="leader-election", daemon=True)
    thread.start()
    log.info("campaigning for lease %s/%s as %s", config.namespace, config.name, identity)
    return thread
