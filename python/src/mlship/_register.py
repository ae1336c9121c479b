"""mlship.register: upload a bundle to a running server, or hand it to the Node CLI for a registry URI."""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from ._http import request
from .errors import CliNotFoundError, MlshipError

_INSTALL = ("install the mlship Node CLI (npm install -g mlship, or npm install mlship in your project and pass "
            "cli='path/to/project'), or upload through a running server: mlship.register(path, server=URL)")


def bundle_tar(path: Path) -> bytes:
    """A deterministic tar of the bundle directory: regular files only, relative paths, sorted, no owners or times."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for f in sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink()):
            rel = f.relative_to(path).as_posix()
            info = tarfile.TarInfo(rel)
            data = f.read_bytes()
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _manifest_name(path: Path) -> str:
    import yaml
    try:
        m = yaml.safe_load((path / "mlship.yaml").read_text())
    except FileNotFoundError:
        raise MlshipError(f"{path} is not a bundle: no mlship.yaml (make one with mlship.save)") from None
    return str(m.get("name"))


def find_cli(cli: str | os.PathLike[str] | None) -> list[str]:
    """The command that runs the mlship CLI: ``cli`` (the bin, or a project with mlship in node_modules, or an mlship
    checkout), ``$MLSHIP_CLI``, or ``mlship`` on PATH."""
    given = cli if cli is not None else os.environ.get("MLSHIP_CLI")
    if given is not None:
        p = Path(given)
        for c in (p, p / "node_modules" / ".bin" / "mlship", p / "bin" / "mlship.js"):
            if c.is_file():
                return ["node", str(c)] if c.suffix == ".js" else [str(c)]
        raise CliNotFoundError(f"no mlship CLI at {given} (looked for it, node_modules/.bin/mlship and bin/mlship.js); "
                               + _INSTALL)
    found = shutil.which("mlship")
    if found:
        return [found]
    raise CliNotFoundError("the mlship Node CLI is needed to write to a registry and was not found on PATH; " + _INSTALL)


def register(path: str | os.PathLike[str], *, server: str | None = None, registry: str | None = None,
             token: str | None = None, alias: str | list[str] | None = None, entity: str | None = None,
             name: str | None = None, allow_signature_change: bool = False, cli: str | os.PathLike[str] | None = None,
             timeout: float = 300.0) -> dict[str, Any]:
    """Registers a bundle directory as the next version of its model.

    ``server=URL``: uploads a tar of the bundle (its sha256 sent along) to a running ``mlship serve``, which stores it
    in its registry (``POST /v2/repository/models/{name}/versions``, an admin route: pass ``token``).
    ``registry="sqlite:…" | "postgres://…"``: runs the Node CLI (``mlship models register``); Python never writes the
    registry tables itself. A signature that differs from the newest version's is refused unless
    ``allow_signature_change=True``. Returns the registered version (name, version, aliases, sha256, …).

    Example::

        mlship.register("iris-bundle", server="http://localhost:8080", alias="production")
        mlship.register("iris-bundle", registry="sqlite:models.db")
    """
    if (server is None) == (registry is None):
        raise MlshipError("register takes server=URL or registry=URI, exactly one")
    bundle = Path(path)
    if not bundle.is_dir():
        raise MlshipError(f"{bundle} is not a bundle directory (make one with mlship.save)")
    model = name or _manifest_name(bundle)
    aliases = [alias] if isinstance(alias, str) else list(alias or [])
    if server is not None:
        body = bundle_tar(bundle)
        q: list[tuple[str, str]] = [("alias", a) for a in aliases]
        if entity is not None:
            q.append(("entity", entity))
        if allow_signature_change:
            q.append(("allow_signature_change", "true"))
        url = f"{server.rstrip('/')}/v2/repository/models/{quote(model, safe='')}/versions"
        if q:
            url += "?" + urlencode(q)
        return dict(request("POST", url, body=body, token=token, timeout=timeout, headers={
            "content-type": "application/x-tar", "x-mlship-sha256": hashlib.sha256(body).hexdigest()}))
    cmd = find_cli(cli) + ["models", "register", str(bundle.resolve()), "--json", "--name", model]
    for a in aliases:
        cmd += ["--alias", a]
    if entity is not None:
        cmd += ["--entity", entity]
    if allow_signature_change:
        cmd.append("--allow-signature-change")
    # The URI travels in the environment, not the command line (where other users could read a password).
    env = {**os.environ, "MLSHIP_REGISTRY": str(registry)}
    try:
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as e:
        raise CliNotFoundError(f"cannot run {cmd[0]}: {e}; " + _INSTALL) from None
    if r.returncode != 0:
        raise MlshipError(f"mlship models register failed: {r.stderr.strip() or r.stdout.strip()}")
    try:
        return dict(json.loads(r.stdout))
    except ValueError:
        raise MlshipError(f"mlship models register printed something that is not JSON: {r.stdout[:300]!r}") from None
