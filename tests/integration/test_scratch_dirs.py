"""A test-ground server given no directory makes one in /tmp and removes it when it goes: left
behind, a CI machine's disk filled run after run until its node's kubelet evicted every Pod."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import redis
from testground.redis_server import RedisServer
from testground.scratch import scratch_dir

ROOT = Path(__file__).resolve().parents[2]

SERVERS = """
import json
from testground.kube import start_cluster
from testground.mongo import FerretDBServer
from testground.redis_server import RedisServer

redis_server, mongo = RedisServer(), FerretDBServer()
redis_server.start()
mongo.start()
cluster = start_cluster(controller_manager=False)
print(json.dumps([str(redis_server.workdir), str(mongo.workdir), str(cluster.workdir)]))
cluster.stop()
mongo.stop()
redis_server.stop()
"""


def test_servers_remove_the_directories_they_made_when_the_process_exits() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SERVERS],
        env={**os.environ, "PYTHONPATH": str(ROOT / "scripts")},
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    made = [Path(p) for p in json.loads(result.stdout.strip().splitlines()[-1])]
    assert [p.name.split("-")[1] for p in made] == ["redis", "ferretdb", "kube"]
    assert [p for p in made if p.exists()] == []


def test_a_scratch_dir_goes_with_its_owner() -> None:
    class Owner:
        pass

    owner = Owner()
    path = scratch_dir(owner, "autozero-test-")
    (path / "data").write_text("x")
    assert path.is_dir()
    del owner
    gc.collect()
    assert not path.exists()


def test_a_restart_keeps_the_servers_own_directory_and_its_data() -> None:
    server = RedisServer(persist=True)
    server.start()
    try:
        redis.Redis.from_url(server.url).rpush("kept", "job")
        server.stop()
        assert server.workdir.is_dir()
        server.start()
        assert redis.Redis.from_url(server.url).llen("kept") == 1
    finally:
        server.stop()
    workdir = server.workdir
    del server
    gc.collect()
    assert not workdir.exists()
