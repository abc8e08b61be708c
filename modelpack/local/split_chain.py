"""A split model's Lambda packaging run locally: its single chaining function, or its part functions driven
by the generated state machine."""

from __future__ import annotations

import json
import time
from pathlib import Path

from modelpack.errors import UsageError
from modelpack.local.lambda_emulator import LambdaEmulator, raised
from modelpack.report.records import ArtifactRecord


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

