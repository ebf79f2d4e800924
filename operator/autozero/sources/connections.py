"""Connections pooled per server and reused across cycles, with a timeout on every call."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the clients are imported when a source first connects
    import redis
    import requests


class Pools:
    """Process-wide clients: one Redis pool, HTTP session or MongoDB client per server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._redis: dict[tuple[str, float], redis.Redis] = {}
        self._http: dict[str, requests.Session] = {}
        self._mongo: dict[tuple[str, float], Any] = {}

    def redis(self, url: str, timeout: float) -> redis.Redis:
        import redis

        with self._lock:
            client = self._redis.get((url, timeout))
            if client is None:
                client = redis.Redis.from_url(
                    url,
                    socket_timeout=timeout,
                    socket_connect_timeout=timeout,
                    health_check_interval=30,
                    retry_on_timeout=False,
                )
                self._redis[(url, timeout)] = client
            return client

    def http(self, base: str) -> requests.Session:
        import requests

        with self._lock:
            session = self._http.get(base)
            if session is None:
                session = requests.Session()
                self._http[base] = session
            return session

    def mongo(self, url: str, timeout: float) -> Any:
        import pymongo

        with self._lock:
            client = self._mongo.get((url, timeout))
            if client is None:
                millis = int(timeout * 1000)
                client = pymongo.MongoClient(
                    url,
                    serverSelectionTimeoutMS=millis,
                    connectTimeoutMS=millis,
                    socketTimeoutMS=millis,
                )
                self._mongo[(url, timeout)] = client
            return client

    def close(self) -> None:
        with self._lock:
            for client in self._redis.values():
                client.close()
            for session in self._http.values():
                session.close()
            for mongo in self._mongo.values():
                mongo.close()
            self._redis.clear()
            self._http.clear()
            self._mongo.clear()


POOLS = Pools()
