"""Fixtures of the SDK suite: the repository's Node CLI (pinned Node 24) and one real `mlship serve` with a sqlite
registry, started on a free loopback port for the session."""
from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

import pytest

warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", category=UserWarning)

REPO = Path(__file__).resolve().parents[2]
NODE_BIN = REPO / "node_modules" / ".bin"
CLI = REPO / "bin" / "mlship.js"
#: the models the session's server serves (lazily: each test registers its model before predicting)
SERVED = ["sk-iris", "sk-cancer", "sk-ridge", "xgb-wine", "xgb-booster", "lgbm-iris", "lgbm-booster", "cb-iris",
          "cb-diabetes", "mixed", "polars-iris", "sig", "infer-iris", "fb-iris", "xgb-trees"]


def node_env() -> dict[str, str]:
    """The environment with the repository's pinned Node first on PATH (the system one may be too old)."""
    env = dict(os.environ)
    env["PATH"] = f"{NODE_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def mlship_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([str(NODE_BIN / "node"), str(CLI), *args], capture_output=True, text=True, env=node_env(),
                       timeout=300)
    if check and r.returncode != 0:
        raise AssertionError(f"mlship {' '.join(args)} exited {r.returncode}: {r.stderr}{r.stdout}")
    return r


def bundle_verify(path: Path) -> dict[str, Any]:
    """`mlship bundle verify --json` from Node: schema, sha256, the model loads, golden.json re-checked."""
    return dict(json.loads(mlship_cli("bundle", "verify", str(path), "--json").stdout))


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:{tmp_path_factory.mktemp('registry') / 'r.db'}"


def start_server(registry: str, models: list[str], *extra: str) -> tuple[subprocess.Popen[str], str]:
    """Starts `mlship serve` on a free loopback port for `registry`; returns the process and its base URL."""
    args = [str(NODE_BIN / "node"), str(CLI), "serve", "--host", "127.0.0.1", "--http-port", "0", "--grpc-port", "-1",
            "--registry", registry, "--lazy", "--workers", "1", "--log-format", "json", *extra]
    for m in models:
        args += ["--model", m]
    cwd = registry.removeprefix("sqlite:").rsplit("/", 1)[0]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=node_env(), cwd=cwd)
    found: dict[str, Any] = {}
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if '"mlship serving"' in line and "http" not in found:
                found["http"] = json.loads(line)["http"]
    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 120
    while "http" not in found:
        if proc.poll() is not None:
            raise RuntimeError(f"mlship serve exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}"
                               f"{''.join(lines)}")
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"mlship serve did not start within 120 s: {''.join(lines)}")
        time.sleep(0.05)
    return proc, f"http://127.0.0.1:{found['http']}"


def stop_server(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def server(registry: str) -> Iterator[str]:
    # No API token exists in this registry, so admin routes (the upload) are refused unless the server opens them;
    # test_errors.py covers the server that checks tokens.
    proc, url = start_server(registry, SERVED, "--allow-open-admin")
    try:
        yield url
    finally:
        stop_server(proc)
