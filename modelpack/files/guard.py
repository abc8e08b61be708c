"""Which output folders a build may replace: only empty ones and ones modelpack wrote itself.

A build replaces its output folder as a whole, so a wrong `--out` (the project folder, `.`, a parent folder)
would delete everything in it. These checks run before any work starts and again just before the
replacement, and refuse with the folder named instead.

What tools write into an output folder after the build belongs to the user, not to the build: `sam build`'s
`.aws-sam/` and `sam deploy --guided`'s `samconfig.toml` beside a template.yaml, and the record `modelpack
publish` keeps of what it created. A rebuild neither refuses nor deletes them; it carries them over into the
new folder (SAM's built template points at the zips by relative path, so it then names the new ones).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from modelpack.errors import UsageError

MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
PUBLISH_RECORD = "publish.json"
SAM_FOLDERS = ("lambda", "lambda/split")  # where a build writes a template.yaml, so where SAM users run sam
SAM_STATE = (".aws-sam", "samconfig.toml", "samconfig.yaml", "samconfig.yml")
KEPT = (PUBLISH_RECORD, *(f"{folder}/{name}" for folder in SAM_FOLDERS for name in SAM_STATE))


def kept_entries(folder: Path) -> list[str]:
    """The entries of KEPT present in `folder` (relative paths), which a rebuild carries over."""
    return [rel for rel in KEPT if os.path.lexists(folder / rel)]


def replace_problem(folder: Path) -> str | None:
    """Why `folder` must not be replaced by a build, or None when it may be.

    A folder may be replaced when it does not exist, is empty, or holds a modelpack manifest.json that lists
    every file in it. The walk stops at the first file the manifest does not list, so a large foreign tree
    costs little.
    """
    if not os.path.lexists(folder):
        return None
    if folder.is_symlink():
        return "is a symbolic link"
    if not folder.is_dir():
        return "is a file, not a folder"
    try:
        if not any(folder.iterdir()):
            return None
        listed = _manifest_files(folder / MANIFEST)
        for root, dirs, files in os.walk(folder):
            base = Path(root)
            if listed is not None:  # carried over by a rebuild, never looked into
                dirs[:] = [d for d in dirs if (base / d).relative_to(folder).as_posix() not in KEPT]
            for name in [*files, *(d for d in dirs if (base / d).is_symlink())]:
                path = base / name
                rel = path.relative_to(folder).as_posix()
                if (rel == MANIFEST or rel in KEPT) and listed is not None:
                    continue
                if listed is None:
                    return f"holds {rel}, which modelpack did not write (no modelpack {MANIFEST} lists it)"
                if rel not in listed or path.is_symlink() or not path.is_file():
                    return f"holds {rel}, which modelpack did not write (its {MANIFEST} does not list it)"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    return None


def _manifest_files(path: Path) -> set[str] | None:
    """The file names a modelpack manifest lists, or None when `path` is not one."""
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_MANIFEST_BYTES:
            return None
        files = json.loads(path.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(files, dict) or not all(isinstance(e, dict) and "sha256" in e for e in files.values()):
        return None
    return set(files)


def check_output_dir(out: Path, *, given: bool, keep: dict[str, Path], no_inside: dict[str, Path]) -> None:
    """Refuse an output folder a build must not replace; raise UsageError naming it and the fix.

    Args:
        out: the output folder.
        given: whether the user chose it (--out) or it is the default dist/<name>.
        keep: what the folder must neither be nor contain (recipe folder, model, data, working directory).
        no_inside: what the folder must not be, contain, or lie inside (a model folder, the cache).
    """
    target = out.resolve()
    why = None
    if target == target.parent:
        why = "is the root of the file system"
    for label, path in {**keep, **no_inside}.items():
        if why:
            break
        p = path.resolve()
        if target == p:
            why = f"is {label} ({path})"
        elif target in p.parents:
            why = f"contains {label} ({path})"
        elif label in no_inside and p in target.parents:
            why = f"lies inside {label} ({path})"
    why = why or replace_problem(target)
    if why:
        raise UsageError(refusal(out, why, given))


def refusal(out: Path, why: str, given: bool = True, *, built: bool = False) -> str:
    """The sentence that explains a refused output folder and what to do instead.

    `built` says the refusal came at the end of a build (the folder changed meanwhile): its result is dropped.
    """
    name = f"--out {out}" if given else f"the default output folder {out}"
    outcome = ("the new output was discarded and nothing was deleted" if built
               else "nothing was built or deleted")
    blocking = why.removeprefix("holds ").partition(", which modelpack did not write")[0]
    fix = (f"Move {out / blocking} out of the folder (or delete it yourself if you do not need it), or build "
           f"into another folder with --out {_sibling(out)}." if why.startswith("holds ") else
           f"Choose a new or empty folder for --out, e.g. --out {_sibling(out) if given else out}.")
    return (f"{name} {why}. A build replaces its output folder as a whole, so modelpack only replaces an empty "
            f"folder or one it wrote itself (with its {MANIFEST}); {outcome}. {fix}")


def _sibling(out: Path) -> Path:
    """A folder next to `out` that does not exist yet (a suggestion that is never the refused folder)."""
    base = out.name
    if base in ("", ".", ".."):  # the root, `.` or `..`: no sibling to name
        return Path("dist") / "<name>"
    for n in range(2, 1000):
        candidate = out.with_name(f"{base}-{n}")
        if not os.path.lexists(candidate):
            return candidate
    return out.with_name(f"{base}-new")
