"""`modelpack invoke`: run built Lambda artifacts the way Lambda runs them, on this machine.

The layer is laid out as /opt and the function as the task root in a temporary directory; the handler
runs under the AWS Lambda Runtime Interface Emulator with awslambdaric, in an interpreter of the target
Python that sees only those directories (and awslambdaric). Both listen on loopback only.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

from modelpack import interpreters, limits
from modelpack.childproc import pip, pip_tail
from modelpack.errors import TargetError, UsageError
from modelpack.records import ArtifactRecord
from modelpack.targets.handler_check import handler_env

SAM_CLI_VERSION = "1.170.0"  # the wheel that carries the emulator binaries
CACHE = Path(os.environ.get("MODELPACK_TOOLS_CACHE", "~/.cache/modelpack")).expanduser()


class UnzipBudget:
    """Bytes that may still be unpacked for one function: its archives count together, as Lambda counts a
    function and its layers against one unzipped limit."""

    def __init__(self, limit: int = limits.LAMBDA_UNZIPPED_TOTAL_BYTES,
                 why: str = "Lambda refuses a function and its layers that large"):
        self.limit, self.used, self.why = limit, 0, why

    def refuse(self, archive: Path, what: str) -> UsageError:
        return UsageError(
            f"{archive}: {what} more than {self.limit} bytes ({self.limit / limits.MIB:.0f} MiB) unzipped, "
            f"counting the archives unpacked before it for the same function; {self.why}, so modelpack invoke "
            "does not unpack it. Rebuild the package with `modelpack build`, or check where this archive came from.")

    def copy(self, src: BinaryIO, dst: BinaryIO, archive: Path) -> None:
        """Copy one entry, counting its real bytes: a zip's declared sizes can lie."""
        while chunk := src.read(1 << 20):
            self.used += len(chunk)
            if self.used > self.limit:
                raise self.refuse(archive, "unpacks to")
            dst.write(chunk)


def safe_extract(archive: Path, dest: Path, budget: UnzipBudget | None = None) -> None:
    """Extract a zip, refusing absolute paths and `..` (zip-slip) and more bytes than `budget` allows
    (default: Lambda's unzipped limit), by the sizes it declares and by the bytes it really unpacks."""
    budget = budget or UnzipBudget()
    root = dest.resolve()
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:
                name = info.filename
                if name.startswith("/") or ".." in Path(name).parts or not (root / name).resolve().is_relative_to(root):
                    raise UsageError(f"{archive}: entry '{name}' would be written outside the extraction directory; "
                                     "refused.")
            if budget.used + sum(i.file_size for i in infos) > budget.limit:
                raise budget.refuse(archive, "declares")
            for info in infos:
                target = root / info.filename
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as dst:
                    budget.copy(src, dst, archive)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise UsageError(f"{archive}: not a readable zip ({exc}); rebuild it with `modelpack build`.") from None


def raised(response: object) -> str | None:
    """`errorType: errorMessage` when `response` is the runtime's report of an unhandled error, else None.

    The emulator answers 200 either way; the body of a raised handler (or one that failed to import) is
    awslambdaric's error object, which modelpack's handlers never return.
    """
    if isinstance(response, dict) and "errorType" in response and "errorMessage" in response:
        return f"{response['errorType']}: {response['errorMessage']}"
    return None


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LambdaEmulator:
    """The emulator running one extracted function + layer; `invoke(event)` posts to it."""

    def __init__(self, dist: Path, workdir: Path, function: str = "lambda/function.zip", extra_layers: tuple = ()):
        artifacts = ArtifactRecord.read_all(dist / "report.json")
        layer = next((a for a in artifacts if a.target == "lambda-layer"), None)
        if layer is None or not any(a.path == function for a in artifacts):
            raise UsageError(f"{dist}: no Lambda layer and function here; add lambda-layer and lambda-function targets.")
        self.python, self.arch = layer.details["python"], layer.details["arch"]
        if self.arch != interpreters.host_arch():
            raise UsageError(f"the layer is built for {self.arch} but this machine is {interpreters.host_arch()}; "
                             f"build a twin with `arch: {interpreters.host_arch()}` to check it here.")
        self.interpreter = interpreters.find(self.python)
        if self.interpreter is None:
            raise UsageError(f"the layer targets Python {self.python}, which is not installed here; build a twin "
                             f"for {interpreters.host_python()} or install python{self.python}.")
        self.opt, self.task = workdir / "opt", workdir / "task"
        budget = UnzipBudget()
        for archive in (layer.path, *extra_layers):
            safe_extract(dist / archive, self.opt, budget)
        safe_extract(dist / function, self.task, budget)
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None
        self._lines: list[str] = []  # the emulator's and the handler's output, read as it comes
        self._seen = 0

    def __enter__(self) -> LambdaEmulator:
        ric = runtime_client(self.python, self.interpreter)
        env = handler_env(self.task, self.opt)
        env["PYTHONPATH"] += os.pathsep + str(ric)
        env.update(AWS_LAMBDA_FUNCTION_NAME="modelpack-invoke", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="1024")
        self.proc = subprocess.Popen(
            [str(emulator(self.arch)), "--runtime-interface-emulator-address", f"127.0.0.1:{self.port}",
             "--runtime-api-address", f"127.0.0.1:{_free_port()}", self.interpreter, "-S", "-m", "awslambdaric",
             "handler.handler"],
            cwd=self.task, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        self._reader = threading.Thread(target=self._read_output, daemon=True)
        self._reader.start()
        deadline = time.time() + 30
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        self.__exit__(None, None, None)
        raise TargetError("the Lambda runtime emulator did not start listening within 30 s")

    def invoke(self, event: object, timeout_s: float = 120) -> tuple[object, float]:
        url = f"http://127.0.0.1:{self.port}/2015-03-31/functions/function/invocations"
        req = urllib.request.Request(url, data=json.dumps(event).encode(), method="POST")
        t = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                body = resp.read()
        except urllib.error.URLError as exc:
            raise TargetError(f"invoking through the emulator failed: {exc}") from None
        return json.loads(body), (time.perf_counter() - t) * 1e3

    def _read_output(self) -> None:
        """Collect the output line by line (also keeps a chatty handler from filling the pipe and blocking)."""
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._lines.append(raw.decode(errors="replace").rstrip("\n"))

    def new_log_lines(self, settle_s: float = 0.1) -> list[str]:
        """The output lines written since the last call (the runtime's START/END/REPORT and the handler's)."""
        time.sleep(settle_s)  # the runtime prints END/REPORT just after it answers
        lines, self._seen = self._lines[self._seen:], len(self._lines)
        return lines

    def logs(self) -> str:
        return "\n".join(self._lines)

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self._reader.join(5)


class SplitChain:
    """A split model's Lambda packaging run locally: the single chaining function under the emulator, or one
    emulator per part driven by the generated state machine (Task, Choice on `error`, Pass, Fail)."""

    def __init__(self, dist: Path, workdir: Path):
        arts = [a for a in ArtifactRecord.read_all(dist / "report.json") if a.target == "lambda-split"]
        if not arts:
            raise UsageError(f"{dist}: no split model here; add optimize.split and a lambda-split target.")
        self.dist, self.workdir = dist, workdir
        self.single = any(a.path.endswith("/function.zip") for a in arts)
        self.layers = tuple(a.path for a in arts if a.details.get("kind") == "model-layer")
        self.parts = {a.details["function"]: a.path for a in arts if a.details.get("function")}
        asl = next((a.path for a in arts if a.path.endswith(".asl.json")), None)
        self.machine = json.loads((dist / asl).read_text()) if asl else None
        self.emulators: dict = {}

    def __enter__(self) -> SplitChain:
        if self.single:
            self.emulators["single"] = LambdaEmulator(self.dist, self.workdir / "single", "lambda/split/function.zip",
                                                      self.layers).__enter__()
        else:
            for name, path in sorted(self.parts.items()):
                self.emulators[name] = LambdaEmulator(self.dist, self.workdir / name, path).__enter__()
        return self

    def invoke(self, event: object) -> tuple[object, float]:
        if self.single:
            return self.emulators["single"].invoke(event)
        t = time.perf_counter()
        return self._run(event), (time.perf_counter() - t) * 1e3

    def _run(self, data: object) -> object:
        """Interpret the generated ASL: Task -> {"Payload": result}, Choice on IsPresent, Pass, Fail."""
        states, name = self.machine["States"], self.machine["StartAt"]
        while True:
            state = states[name]
            kind = state["Type"]
            if kind == "Task":
                function = state["Parameters"]["FunctionName"].strip("${}")
                payload, _ = self.emulators[function].invoke(data)
                if raised(payload):  # an unhandled function error fails the Task, and with no Catch, the run
                    return {**payload, "state": name}
                data = {"Payload": payload}
            elif kind == "Choice":
                nxt = state["Default"]
                for rule in state["Choices"]:
                    if _present(data, rule["Variable"]) == rule["IsPresent"]:
                        nxt = rule["Next"]
                        break
                name = nxt
                continue
            elif kind == "Pass":
                if "Parameters" in state:
                    data = {k.removesuffix(".$"): _path(data, v) for k, v in state["Parameters"].items()}
                if "OutputPath" in state:
                    data = _path(data, state["OutputPath"])
            elif kind == "Fail":
                return {"error": _path(data, state["CausePath"]), "state": name, "failed": state["Error"]}
            if state.get("End"):
                return data
            name = state["Next"]

    def __exit__(self, *exc) -> None:
        for emu in self.emulators.values():
            emu.__exit__(*exc)


def _path(data: object, path: str) -> object:
    for part in path.removeprefix("$").strip(".").split("."):
        if part:
            data = data[part]  # type: ignore[index]
    return data


def _present(data: object, path: str) -> bool:
    try:
        _path(data, path)
        return True
    except (KeyError, TypeError):
        return False
