"""Find or build our Collector distribution (``otelcol-apotel``): the ONE build path.

``agentpress-otel stack up``, the tests, the benchmarks and ``scripts/build-collector.sh`` all call
:func:`collector_binary`. Lookup order:

1. an explicit path (``--collector PATH``) or ``AGENTPRESS_OTEL_COLLECTOR_BIN``;
2. the per-user cache ``~/.cache/agentpress-otel/<key>/otelcol-apotel`` (``$XDG_CACHE_HOME`` honoured), where
   ``<key>`` hashes the builder manifest shipped with the package, the builder version and the Go version, so a
   new manifest (or Go) gets a new build and an old one is never reused by mistake;
3. a build into that cache with the OpenTelemetry Collector Builder (``go install``-ed into the cache) when
   ``go`` is on PATH;
4. otherwise :class:`ComponentMissing` saying what to install.

Run as ``python -m agentpress_otel._harness.collector_build [--force]`` to build and print the path.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agentpress_otel._assets import deploy_file
from agentpress_otel._harness._proc import ComponentMissing

__all__ = ["BINARY_NAME", "ENV_BIN", "build", "cache_dir", "cache_key", "cached_binary", "collector_binary"]

BINARY_NAME = "otelcol-apotel"
ENV_BIN = "AGENTPRESS_OTEL_COLLECTOR_BIN"
MANIFEST = "collector-config/builder-config.yaml"
_INSTALL_HINT = (
    "install Go >= 1.25 (https://go.dev/dl/) so agentpress-otel can build its Collector, or pass "
    f"--collector PATH / set {ENV_BIN} to an otelcol-apotel binary built from collector-config/builder-config.yaml"
)


def _manifest_text() -> str:
    return deploy_file(MANIFEST).read_text()


def builder_version(manifest: str | None = None) -> str:
    """The builder version, which must equal the core version pinned in the manifest (strict versioning)."""
    text = manifest if manifest is not None else _manifest_text()
    m = re.search(r"go\.opentelemetry\.io/collector/receiver/otlpreceiver (v[0-9.]+)", text)
    if m is None:
        raise ValueError(f"{MANIFEST}: no otlpreceiver module to take the builder version from")
    return os.environ.get("OCB_VERSION") or m.group(1)


def _go() -> str | None:
    return shutil.which("go")


@functools.lru_cache(maxsize=4)
def _go_version(go: str) -> str:
    # One `go env` per process: every Collector start (tests start dozens) looks the binary up.
    res = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, timeout=60, check=True)
    return res.stdout.strip()


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "agentpress-otel"


def cache_key(go_version: str, manifest: str | None = None) -> str:
    """sha256 of the manifest, the builder version and the Go version (first 16 hex digits)."""
    text = manifest if manifest is not None else _manifest_text()
    h = hashlib.sha256()
    h.update(text.encode())
    h.update(f"\nocb={builder_version(text)}\n{go_version}\n".encode())
    return h.hexdigest()[:16]


def cache_dir(go_version: str) -> Path:
    return cache_root() / cache_key(go_version)


def cached_binary() -> Path | None:
    """The cached build for the current manifest, or None.

    Without Go the Go version is unknown: then any cached build of THIS manifest is used (the key is matched
    through the ``manifest.sha256`` file written next to each build).
    """
    go = _go()
    if go is not None:
        cand = cache_dir(_go_version(go)) / BINARY_NAME
        return cand if _executable(cand) else None
    want = hashlib.sha256(_manifest_text().encode()).hexdigest()
    root = cache_root()
    if not root.is_dir():
        return None
    for d in sorted(root.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True):
        stamp = d / "manifest.sha256"
        if _executable(d / BINARY_NAME) and stamp.is_file() and stamp.read_text().strip() == want:
            return d / BINARY_NAME
    return None


def _executable(p: Path) -> bool:
    return p.is_file() and os.access(p, os.X_OK)


def build(*, force: bool = False, log: bool = True, timeout: float = 3600.0) -> Path:
    """Build ``otelcol-apotel`` into the user cache (a no-op when the cached build matches) and return its path.

    Example::

        binary = build()
    """
    go = _go()
    if go is None:
        raise ComponentMissing(f"go not found: {_INSTALL_HINT}")
    manifest = _manifest_text()
    ocb = builder_version(manifest)
    out_dir = cache_root() / cache_key(_go_version(go), manifest)
    out = out_dir / BINARY_NAME
    if _executable(out) and not force:
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    builder = cache_root() / f"builder-{ocb}"
    env = dict(os.environ, CGO_ENABLED="0")
    env.setdefault("GOFLAGS", "-trimpath")

    def say(msg: str) -> None:
        if log:
            print(msg, file=sys.stderr, flush=True)

    if not _executable(builder):
        say(f"installing the OpenTelemetry Collector Builder {ocb} into {builder.parent} …")
        gobin = Path(tempfile.mkdtemp(prefix="ocb-", dir=cache_root()))
        try:
            subprocess.run([go, "install", f"go.opentelemetry.io/collector/cmd/builder@{ocb}"],
                           env=dict(env, GOBIN=str(gobin)), check=True, timeout=timeout)
            shutil.move(str(gobin / "builder"), builder)
        finally:
            shutil.rmtree(gobin, ignore_errors=True)
    say(f"building {BINARY_NAME} into {out_dir} (several minutes on 2 cores) …")
    start = time.monotonic()
    # The manifest's output_path is relative (./collector-config/_build): run in a scratch folder that mirrors it.
    work = Path(tempfile.mkdtemp(prefix="build-", dir=out_dir))
    try:
        (work / "collector-config").mkdir()
        (work / MANIFEST).write_text(manifest)
        res = subprocess.run([str(builder), f"--config={work / MANIFEST}"], cwd=work, env=env, timeout=timeout,
                             capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise RuntimeError(f"collector build failed:\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}")
        built = next((p for p in work.rglob(BINARY_NAME) if _executable(p)), None)
        if built is None:
            raise RuntimeError(f"the builder succeeded but left no {BINARY_NAME} under {work}")
        tmp = out.with_suffix(".tmp")
        shutil.copy2(built, tmp)
        tmp.chmod(0o755)
        os.replace(tmp, out)  # atomic: a concurrent reader sees the old build or the new one, never half
        (out_dir / "manifest.sha256").write_text(hashlib.sha256(manifest.encode()).hexdigest() + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    say(f"built {out} in {time.monotonic() - start:.0f}s")
    return out


def collector_binary(explicit: str | os.PathLike[str] | None = None, *, build_if_missing: bool = True) -> Path:
    """The Collector binary to run: explicit path > ``AGENTPRESS_OTEL_COLLECTOR_BIN`` > user cache > a Go build.

    Raises :class:`ComponentMissing` with what to install when none is possible.

    Example::

        binary = collector_binary()  # builds into ~/.cache/agentpress-otel/<key>/ the first time
    """
    chosen = explicit or os.environ.get(ENV_BIN)
    if chosen:
        p = Path(chosen).expanduser()
        if not _executable(p):
            src = "--collector" if explicit else ENV_BIN
            raise ComponentMissing(f"{src}={chosen}: not an executable file")
        return p
    found = cached_binary()
    if found is not None:
        return found
    if build_if_missing and _go() is not None:
        return build()
    raise ComponentMissing(f"{BINARY_NAME} is not built for this manifest: {_INSTALL_HINT}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=f"Build {BINARY_NAME} into the user cache and print its path.")
    ap.add_argument("--force", action="store_true", help="rebuild even when the cached build matches")
    args = ap.parse_args(argv)
    try:
        path = build(force=args.force)
    except ComponentMissing as exc:
        print(exc, file=sys.stderr)
        return 2
    with contextlib.suppress(OSError):
        subprocess.run([str(path), "--version"], check=False, timeout=30)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
