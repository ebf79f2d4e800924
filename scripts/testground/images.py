"""Container images for the test ground's node, built here without a registry and cached.

- `pause`: Kubernetes' own `build/pause/linux/pause.c` (from the pinned k8s.io/kubernetes module),
  compiled static: containerd's sandbox image.
- `base`: Debian's `minbase` with `python3` (debootstrap from the mirror apt uses): the local
  stand-in for the public Python image, with the Python minor version of the Dockerfile's default.
- `autozero`: the project's own Dockerfile, built with buildah (`--isolation chroot`) on that base.
- `worker`: an RQ worker (and the demo's MRQ worker) on the same base, at the lock file's pins.

Each image is an OCI archive in `~/.cache/autozero/images/`, named by the hash of its inputs, so a
warm run rebuilds nothing that has not changed. `python -m testground.images` builds what is
missing and prints a line per image (built or cached, seconds, size).
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

from testground.tools import SCRIPTS, VERSIONS, cache_dir

ROOT = SCRIPTS.parent
REGISTRY = "autozero.local"
WORKER_FILES = SCRIPTS / "testground" / "worker_image"
#: Where buildah keeps its layers (its cache across builds) and run state: never /var/lib.
BUILDAH_DIR = "buildah"


class ImageBuildError(RuntimeError):
    """An image could not be built; the message names the step and carries its output's tail."""

    def __init__(self, image: str, step: str, output: str = "") -> None:
        detail = f"\n--- last lines ---\n{output[-3000:]}" if output else ""
        super().__init__(f"image {image}: {step} failed{detail}")


@dataclass(frozen=True)
class Image:
    """A built image: its reference inside containerd and its OCI archive on disk."""

    name: str
    ref: str
    archive: Path
    built_seconds: float | None  # None: taken from the cache

    @property
    def size_bytes(self) -> int:
        return self.archive.stat().st_size

    @property
    def repository(self) -> str:
        return self.ref.rsplit(":", 1)[0]

    @property
    def tag(self) -> str:
        return self.ref.rsplit(":", 1)[1]


def images_dir() -> Path:
    return cache_dir() / "images"


def _run(image: str, step: str, argv: list[str], **kwargs: object) -> str:
    """Run one build step; a failure raises with the step's own output."""
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
        **kwargs,  # type: ignore[call-overload]
    )
    if proc.returncode != 0:
        raise ImageBuildError(image, step, (proc.stdout or "") + (proc.stderr or ""))
    return str(proc.stdout)


def digest_files(paths: Iterable[Path], base: Path) -> str:
    """sha256 over the names and contents of `paths` (relative to `base`), in a stable order."""
    sha = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.relative_to(base).as_posix()):
        sha.update(path.relative_to(base).as_posix().encode() + b"\0")
        sha.update(hashlib.sha256(path.read_bytes()).digest())
    return sha.hexdigest()


def build_context_files(context: Path) -> list[Path]:
    """The files a `docker build` of `context` sends: everything `.dockerignore` does not exclude.

    Patterns are matched with fnmatch against each path and its parent directories (enough for
    this project's .dockerignore, which has no `!` exceptions)."""
    patterns = []
    ignore = context / ".dockerignore"
    if ignore.exists():
        for line in ignore.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                if line.startswith("!"):
                    raise ValueError(f"{ignore}: '!' exceptions are not supported here: {line}")
                patterns.append(line.strip("/"))

    def ignored(rel: str) -> bool:
        parts = rel.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        for pattern in patterns:
            bare = pattern.removeprefix("**/")
            for prefix in prefixes:
                if fnmatch(prefix, pattern) or fnmatch(prefix.rsplit("/", 1)[-1], bare):
                    return True
        return False

    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(context):
        rel_dir = Path(dirpath).relative_to(context).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = [d for d in dirnames if not ignored(rel_dir + d)]
        found.extend(Path(dirpath) / f for f in filenames if not ignored(rel_dir + f))
    return found


# --- OCI archives -------------------------------------------------------------------------------


def _blob(layout: tarfile.TarFile, data: bytes) -> dict[str, object]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _add_bytes(layout, f"blobs/sha256/{digest[7:]}", data)
    return {"digest": digest, "size": len(data)}


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    archive.addfile(info, io.BytesIO(data))


def write_oci_archive(
    out: Path, ref: str, layer: Path, config: dict[str, object], *, compress: bool = False
) -> None:
    """An OCI image archive (one layer) that `buildah FROM oci-archive:` and `ctr import` read.

    The layer is stored uncompressed unless `compress`: a local archive is read once or twice, and
    gzip would cost more time than it saves."""
    data = layer.read_bytes()
    diff_id = "sha256:" + hashlib.sha256(data).hexdigest()
    media = "application/vnd.oci.image.layer.v1.tar"
    if compress:
        data = gzip.compress(data, compresslevel=1, mtime=0)
        media += "+gzip"
    image_config = {
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": f"autozero test ground: {ref}"}],
    }
    tmp = out.with_suffix(".partial")
    with tarfile.open(tmp, "w") as archive:
        _add_bytes(archive, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        layer_desc = {"mediaType": media, **_blob(archive, data)}
        config_desc = {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            **_blob(archive, json.dumps(image_config, sort_keys=True).encode()),
        }
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config_desc,
            "layers": [layer_desc],
        }
        manifest_desc = {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            **_blob(archive, json.dumps(manifest, sort_keys=True).encode()),
            "annotations": {"org.opencontainers.image.ref.name": ref},
        }
        index = {"schemaVersion": 2, "manifests": [manifest_desc]}
        _add_bytes(archive, "index.json", json.dumps(index, sort_keys=True).encode())
    tmp.rename(out)


def tar_rootfs(rootfs: Path, out: Path, *, skip: tuple[str, ...] = ()) -> None:
    """A layer tar of `rootfs` with numeric owners, sorted, without the contents of `skip` dirs."""

    def entries(directory: Path) -> Iterator[Path]:
        for child in sorted(directory.iterdir(), key=lambda p: p.name):
            yield child
            rel = child.relative_to(rootfs).as_posix()
            if child.is_dir() and not child.is_symlink() and rel not in skip:
                yield from entries(child)

    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as layer:
        for path in entries(rootfs):
            info = layer.gettarinfo(str(path), arcname=path.relative_to(rootfs).as_posix())
            info.uname = info.gname = ""
            if info.isreg():
                with path.open("rb") as handle:
                    layer.addfile(info, handle)
            else:
                layer.addfile(info)


# --- the images ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """One build at a time: the test suite, the demo and `make setup` may all ask at once."""
    images_dir().mkdir(parents=True, exist_ok=True)
    with (images_dir() / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _cached(name: str, key: str, ref: str) -> tuple[Path, Image | None]:
    archive = images_dir() / f"{name}-{key}.tar"
    if archive.exists():
        return archive, Image(name, ref, archive, None)
    return archive, None


def _prune(name: str, keep: Path) -> None:
    """Drop the archives of older inputs: a cache per source change would only grow."""
    for old in images_dir().glob(f"{name}-*.tar"):
        if old != keep:
            old.unlink()


def kubernetes_source() -> Path:
    """The pinned k8s.io/kubernetes module, as downloaded by scripts/build-go-tools.sh (or now,
    from the Go module cache or proxy, when its note of the download is gone)."""
    version = VERSIONS["KUBERNETES_VERSION"]
    info = cache_dir() / "src" / f"kubernetes-{version}" / "download.json"
    if info.exists():
        return Path(json.loads(info.read_text())["Dir"])
    out = _run(
        "pause",
        "go mod download",
        ["go", "mod", "download", "-json", f"k8s.io/kubernetes@{version}"],
    )
    return Path(json.loads(out)["Dir"])


def build_pause() -> Image:
    source = kubernetes_source() / "build" / "pause" / "linux" / "pause.c"
    key = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    ref = f"{REGISTRY}/pause:{key}"
    archive, hit = _cached("pause", key, ref)
    if hit:
        return hit
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="autozero-pause-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        rootfs.mkdir()
        _run("pause", "gcc", ["gcc", "-Os", "-static", "-o", str(rootfs / "pause"), str(source)])
        _run("pause", "strip", ["strip", str(rootfs / "pause")])
        tar_rootfs(rootfs, Path(tmp) / "layer.tar")
        config: dict[str, object] = {"Entrypoint": ["/pause"], "User": "65535:65535"}
        write_oci_archive(archive, ref, Path(tmp) / "layer.tar", config)
    _prune("pause", archive)
    return Image("pause", ref, archive, time.monotonic() - start)


def debian_mirror() -> tuple[str, str]:
    """The Debian mirror and suite apt is configured with (deb822 or one-line format)."""
    suite = ""
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            suite = line.partition("=")[2].strip('"')
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for path in sources:
        for line in path.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1], suite
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            fields = line.split()
            if fields[:1] == ["deb"] and "security" not in line:
                uri = next(f for f in fields[1:] if "://" in f)
                return uri, suite
    raise ImageBuildError("base", "finding apt's Debian mirror in /etc/apt")


def dockerfile_python_minor(dockerfile: Path = ROOT / "Dockerfile") -> str:
    """The Python minor version of the Dockerfile's default base, e.g. '3.11'."""
    match = re.search(r"^ARG PYTHON_IMAGE=python:(\d+\.\d+)", dockerfile.read_text(), re.M)
    if not match:
        raise ImageBuildError("base", f"reading the default PYTHON_IMAGE of {dockerfile}")
    return match.group(1)


BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3")
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def build_base() -> Image:
    mirror, suite = debian_mirror()
    want_minor = dockerfile_python_minor()
    key = hashlib.sha256(
        f"{mirror} {suite} {' '.join(BASE_PACKAGES)} {want_minor}".encode()
    ).hexdigest()[:16]
    ref = f"{REGISTRY}/python-base:{key}"
    archive, hit = _cached("base", key, ref)
    if hit:
        return hit
    start = time.monotonic()
    work = images_dir() / "base-work"
    shutil.rmtree(work, ignore_errors=True)
    rootfs = work / "rootfs"
    try:
        _run(
            "base",
            "debootstrap",
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                suite,
                str(rootfs),
                mirror,
            ],
        )
        version = _run("base", "python3 --version", ["chroot", str(rootfs), "python3", "--version"])
        got_minor = ".".join(version.split()[1].split(".")[:2])
        if got_minor != want_minor:
            raise ImageBuildError(
                "base",
                f"checking Python: Debian {suite} has {got_minor}, the Dockerfile's default "
                f"image {want_minor}; the test image would not be the one users get",
            )
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists", "var/log"):
            for child in (rootfs / leftover).glob("*"):
                if child.is_file():
                    child.unlink()
        config: dict[str, object] = {
            "Env": [f"PATH={BASE_PATH}", "LANG=C.UTF-8"],
            "Cmd": ["python3"],
        }
        tar_rootfs(rootfs, work / "layer.tar", skip=("dev", "proc", "sys", "run", "tmp"))
        write_oci_archive(archive, ref, work / "layer.tar", config)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _prune("base", archive)
    return Image("base", ref, archive, time.monotonic() - start)


def buildah(*args: str) -> list[str]:
    """buildah with its storage in the cache (its layers are the build cache), never /var/lib."""
    store = cache_dir() / BUILDAH_DIR
    return [
        "buildah",
        f"--root={store / 'root'}",
        f"--runroot={store / 'run'}",
        "--storage-driver=overlay",
        *args,
    ]


def _bud(name: str, ref: str, archive: Path, context: Path, dockerfile: Path, base: Image) -> None:
    _run(
        name,
        "buildah bud",
        buildah(
            "bud",
            "--isolation=chroot",
            "--layers",
            "--force-rm",  # a failed step's container would stay, mounted
            # The machine's trust store, for pip's downloads in RUN steps (not kept in the image):
            # Debian's pip reads it, and this machine's may hold a CA the public image lacks.
            "--volume=/etc/ssl/certs:/etc/ssl/certs:ro",
            f"--build-arg=PYTHON_IMAGE=oci-archive:{base.archive}",
            f"--file={dockerfile}",
            f"--tag={ref}",
            str(context),
        ),
    )
    partial = archive.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    _run(name, "buildah push", buildah("push", ref, f"oci-archive:{partial}:{ref}"))
    partial.rename(archive)
    _run(name, "buildah rmi", buildah("rmi", ref))


def build_operator(base: Image) -> Image:
    """The project's Dockerfile, on the local base instead of the public Python image."""
    files = build_context_files(ROOT)
    key = hashlib.sha256(f"{digest_files(files, ROOT)} {base.ref}".encode()).hexdigest()[:16]
    ref = f"{REGISTRY}/autozero:{key}"
    archive, hit = _cached("autozero", key, ref)
    if hit:
        return hit
    start = time.monotonic()
    _bud("autozero", ref, archive, ROOT, ROOT / "Dockerfile", base)
    _prune("autozero", archive)
    return Image("autozero", ref, archive, time.monotonic() - start)


#: The worker image's packages: RQ and what it needs, at the lock file's pins and hashes.
WORKER_REQUIREMENTS = ("rq", "pymongo", "pika")  # pika: the chaos campaign's RabbitMQ consumers
#: The demo's MRQ worker (`make demo DEMO_ARGS=--node`) runs from the same image.
DEMO_WORKER = SCRIPTS / "testground" / "demo_worker.py"


def worker_requirements(roots: tuple[str, ...] = WORKER_REQUIREMENTS) -> str:
    """The lock files' entries (pins and hashes) for `roots` and everything they depend on.

    The dependencies are read from the installed packages' metadata (the dev environment, which
    holds exactly the locked versions), so the worker gets the versions the tests run, without
    resolving anything again."""
    from importlib import metadata

    from packaging.requirements import Requirement

    entries: dict[str, str] = {}
    for lock in (ROOT / "requirements.lock", ROOT / "requirements-dev.lock"):
        for block in re.split(r"\n(?=\S)", lock.read_text()):
            match = re.match(r"([A-Za-z0-9_.-]+)==", block)
            if match:
                entries[_canonical(match.group(1))] = block.strip()
    wanted: set[str] = set()
    todo = [_canonical(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        wanted.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            # Not installed here (its marker excludes this Python): the worker image's `pip
            # check` fails if it needs a package the list lacks.
            requires = []
        for spec in requires:
            requirement = Requirement(spec)
            # Markers other than extras are left to pip in the image: its Python is not this one
            # (Debian's 3.11.2 needs async-timeout for redis, this interpreter may not).
            if "extra" not in str(requirement.marker or ""):
                todo.append(_canonical(requirement.name))
    missing = wanted - entries.keys()
    if missing:
        raise ImageBuildError("worker", f"finding {sorted(missing)} in the lock files")
    return "\n".join(entries[name] for name in sorted(wanted)) + "\n"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def build_worker(base: Image) -> Image:
    requirements = worker_requirements()
    files = sorted(WORKER_FILES.iterdir())
    key = hashlib.sha256(
        f"{digest_files(files, WORKER_FILES)} {digest_files([DEMO_WORKER], DEMO_WORKER.parent)}"
        f" {requirements} {base.ref}".encode()
    ).hexdigest()[:16]
    ref = f"{REGISTRY}/rq-worker:{key}"
    archive, hit = _cached("worker", key, ref)
    if hit:
        return hit
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="autozero-worker-") as tmp:
        context = Path(tmp)
        for path in [*files, DEMO_WORKER]:
            shutil.copy(path, context / path.name)
        (context / "requirements.txt").write_text(requirements)
        _bud("worker", ref, archive, context, context / "Dockerfile", base)
    _prune("worker", archive)
    return Image("worker", ref, archive, time.monotonic() - start)


@dataclass(frozen=True)
class NodeImages:
    pause: Image
    base: Image
    operator: Image
    worker: Image

    def all(self) -> tuple[Image, ...]:
        return (self.pause, self.base, self.operator, self.worker)


def build_all() -> NodeImages:
    """Build (cold) or find (warm) every image the node's tests need."""
    with _locked():
        try:
            base = build_base()
            return NodeImages(
                pause=build_pause(),
                base=base,
                operator=build_operator(base),
                worker=build_worker(base),
            )
        finally:
            release_buildah_mounts()


def mounts_under(directory: Path) -> list[str]:
    """Mount points at or below `directory` (from /proc/self/mountinfo), deepest first."""
    found = []
    prefix = str(directory).rstrip("/")
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def release_buildah_mounts() -> None:
    """Leave no mount behind: buildah's storage keeps its layer directory bind-mounted (and a
    failed build its container's root) after the command ends."""
    store = cache_dir() / BUILDAH_DIR
    if not store.exists():
        return
    subprocess.run(buildah("rm", "--all"), capture_output=True, check=False, timeout=120)
    for point in mounts_under(store):
        _run("buildah", f"umount {point}", ["umount", point])


def describe(image: Image) -> str:
    how = "cached" if image.built_seconds is None else f"built in {image.built_seconds:.0f}s"
    return f"[images] {image.name:<9} {how:<16} {image.size_bytes / 1e6:6.0f} MB  {image.ref}"


def main() -> int:
    try:
        images = build_all()
    except ImageBuildError as exc:
        print(f"[images] {exc}", file=sys.stderr)
        return 1
    for image in images.all():
        print(describe(image), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
