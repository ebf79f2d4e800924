"""Wait, at start, until the apiserver's discovery serves the policies' resource.

kopf resolves the resources it serves once, from discovery, when it starts; later it scans
again only when a CRD changes. An operator started while its apiserver restarts (a node reboot,
a control-plane upgrade) can find the CRD's group missing from a discovery that is still
filling, and then serves nothing until someone edits a CRD: the chaos campaign saw one sit 48 s
with no policy evaluated, until its next restart. So the start waits for the resource to be
served, with a bound (20 s: within the 30 s the chart's liveness probe allows a start, since
kopf serves /healthz only once its start is done): a CRD that is not installed at all is kopf's
to report, as before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from autozero.runtime.kubeapi import get_json

log = logging.getLogger(__name__)
POLL = 0.5  # seconds between two reads of discovery
TIMEOUT = 5.0  # seconds, one read


def wait_until_served(
    api: Any,
    group: str,
    version: str,
    plural: str,
    *,
    bound: float = 20.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Whether `/apis/<group>/<version>` lists `plural`, read every POLL seconds until it does
    or `bound` seconds have passed (an apiserver not answering counts as not serving it)."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    path = f"/apis/{group}/{version}"
    deadline = clock() + bound
    said = False
    while True:
        why = ""
        try:
            listed = get_json(api, path, timeout=TIMEOUT).get("resources") or []
            if any(r.get("name") == plural for r in listed if isinstance(r, dict)):
                if said:
                    log.info("the apiserver serves %s/%s %s: starting", group, version, plural)
                return True
            why = "not listed"
        except ApiException as exc:
            why = f"HTTP {exc.status}"
        except (HTTPError, OSError) as exc:
            why = f"no answer ({type(exc).__name__})"
        if clock() >= deadline:
            log.warning(
                "the apiserver still does not serve %s/%s %s after %g s (%s): starting anyway; "
                "is the CRD installed?",
                group,
                version,
                plural,
                bound,
                why,
            )
            return False
        if not said:
            log.info(
                "waiting for the apiserver to serve %s/%s %s (%s): starting, or the CRD missing",
                group,
                version,
                plural,
                why,
            )
            said = True
        sleep(POLL)
