"""The tools `modelpack invoke` and `modelpack serve` run Lambda artifacts with, fetched once and cached:
the Runtime Interface Emulator (from the aws-sam-cli wheel) and the runtime client (awslambdaric)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

from modelpack.errors import TargetError
from modelpack.host import interpreters
from modelpack.host.childproc import pip, pip_tail

SAM_CLI_VERSION = "1.170.0"  # the wheel that carries the emulator binaries
CACHE = Path(os.environ.get("MODELPACK_TOOLS_CACHE", "~/.cache/modelpack")).expanduser()


def _pip(args: list[str], what: str) -> None:
    proc = pip(args)
    if proc.returncode != 0:
        raise TargetError(f"could not fetch {what} from the package index: {pip_tail(proc)}")


def tools_to_fetch(python: str, arch: str) -> list[str]:
    """What the first `invoke` downloads for this Python and architecture, and where it keeps it."""
    todo = []
    if not (CACHE / "rie" / SAM_CLI_VERSION / f"aws-lambda-rie-{arch}").exists():
        todo.append(f"the aws-sam-cli {SAM_CLI_VERSION} wheel (a 48 MB download; only its Lambda Runtime "
                    f"Interface Emulator binary, 9 MB, is kept) into {CACHE / 'rie'}")
    if not (CACHE / "lambda-runtime" / python / ".complete").exists():
        todo.append(f"awslambdaric and boto3 for Python {python} (about 40 MB) into {CACHE / 'lambda-runtime' / python}")
    return todo


def emulator(arch: str) -> Path:
    """The Runtime Interface Emulator binary, taken once from the aws-sam-cli wheel and cached."""
    binary = CACHE / "rie" / SAM_CLI_VERSION / f"aws-lambda-rie-{arch}"
    if binary.exists():
        return binary
    with tempfile.TemporaryDirectory() as tmp:
        _pip(["download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", tmp, f"aws-sam-cli=={SAM_CLI_VERSION}"],
             "the aws-sam-cli wheel (for the Lambda runtime emulator)")
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(f"samcli/local/rapid/aws-lambda-rie-{arch}")
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_suffix(".part")
    partial.write_bytes(data)
    partial.chmod(0o755)
    os.replace(partial, binary)
    return binary


def runtime_client(python: str, interpreter: str) -> Path:
    """What the Lambda Python runtime provides besides the standard library, for the target Python, cached:
    the runtime interface client (awslambdaric) and boto3."""
    dest = CACHE / "lambda-runtime" / python
    if (dest / ".complete").exists():
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    installer = interpreter if pip(["--version"], interpreter).returncode == 0 else sys.executable
    args = ["install", "--quiet", "--target", str(dest), "awslambdaric", "boto3"]
    if installer == sys.executable and python != interpreters.host_python():
        args += ["--only-binary=:all:", "--python-version", python]
    run = pip(args, installer)
    if run.returncode != 0:
        raise TargetError(f"could not install awslambdaric for Python {python}: {pip_tail(run)}")
    (dest / ".complete").touch()
    return dest

