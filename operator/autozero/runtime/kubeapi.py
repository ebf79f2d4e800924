"""GET requests to the apiserver that answer plain JSON, never client models.

They go through a `kubernetes.client.ApiClient` for its configuration, credentials (a refreshed
token included) and connection pool, but skip the generated API classes: a list of 10,000
Deployments deserialized into `V1Deployment` models would cost hundreds of MiB, and the generated
`CustomObjectsApi` cannot reach the core group (`/api/v1`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

TIMEOUT = 10.0  # seconds, every request that is not a watch

Query = Sequence[tuple[str, str | int | bool]]


def open_get(api_client: Any, path: str, query: Query, timeout: float | tuple[float, float]) -> Any:
    """Send `GET path?query` and return the unread urllib3 response (status 2xx).

    Raises `ApiException` (with the apiserver's Status body) for any other status, and urllib3 or
    socket errors when the apiserver cannot be reached.
    """
    from kubernetes.client.exceptions import ApiException

    method, url, headers, body, post = api_client.param_serialize(
        "GET",
        path,
        query_params=list(query),
        header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"],
    )
    answer = api_client.call_api(method, url, headers, body, post, _request_timeout=timeout)
    if not 200 <= answer.status <= 299:
        data = answer.read() or b""
        raise ApiException.from_response(
            http_resp=answer, body=data.decode("utf-8", errors="replace"), data=None
        )
    return answer.response


def get_json(
    api_client: Any, path: str, query: Query = (), timeout: float = TIMEOUT
) -> dict[str, Any]:
    """`GET path?query` as a dict (the whole body is read, the connection goes back to the pool)."""
    response = open_get(api_client, path, query, timeout)
    try:
        data = response.data
    finally:
        response.release_conn()
    found = json.loads(data)
    if not isinstance(found, dict):
        raise ValueError(f"GET {path}: expected a JSON object, got {type(found).__name__}")
    return found


def collection_path(group: str, version: str, plural: str, namespace: str | None) -> str:
    """`/apis/<group>/<version>[/namespaces/<ns>]/<plural>`; the core group is `/api/<version>`."""
    root = f"/apis/{group}/{version}" if group else f"/api/{version}"
    if namespace:
        return f"{root}/namespaces/{namespace}/{plural}"
    return f"{root}/{plural}"
