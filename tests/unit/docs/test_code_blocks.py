"""The documentation's code blocks and links: every fenced block names its language, every recipe and recipe
fragment validates, every `modelpack` command parses with the real command line, and every relative link
reaches an existing file and heading. Fast: no TensorFlow, nothing is built or run."""

from __future__ import annotations

import copy
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import yaml

from modelpack.cli.main import cli
from modelpack.errors import RecipeError
from modelpack.recipe.loader import load_recipe
from tests.helpers.paths import DIGITS, ROOT

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
FILES = [README, *DOCS]
README_MAX_LINES = 200

COMMAND_LANGS = {"sh", "bash", "console", "shell"}
RECIPE_LANGS = {"yaml", "yml"}
OTHER_LANGS = {"json", "text", "python"}
INVALID = "<!-- invalid -->"  # on the line before a fence: the block shows an error and must be refused
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[^\s`]*)")
OPERATOR = re.compile(r"^[();<>|&]+$")
# A GitHub Actions expression in a workflow's `run:` stands for a built output folder in these documents.
GHA_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")
GHA_PLACEHOLDER = "dist/from-workflow"


@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the opening fence (or of the first indented line)
    lang: str
    text: str
    invalid: bool

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def fenced_blocks(path: Path) -> list[Block]:
    lines = path.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, start = len(m["indent"]), m["fence"], i
        body, i = [], i + 1
        while i < len(lines) and not (lines[i].strip().startswith(fence) and lines[i].strip().strip(fence[0]) == ""):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        before = next((lines[j].strip() for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        blocks.append(Block(path, start + 1, m["lang"].lower(), "\n".join(body) + "\n", before == INVALID))
        i += 1
    return blocks


def outside_fences(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of every line that is not inside a fenced block."""
    out, inside, fence = [], False, ""
    for n, line in enumerate(path.read_text().splitlines(), 1):
        m = FENCE.match(line)
        if not inside and m:
            inside, fence = True, m["fence"]
        elif inside and line.strip().startswith(fence) and line.strip().strip(fence[0]) == "":
            inside = False
        elif not inside:
            out.append((n, line))
    return out


def indented_commands(path: Path) -> list[Block]:
    """Indented code lines (four spaces, outside fences) that run modelpack, such as the quick start's."""
    return [Block(path, n, "sh", line.strip() + "\n", False) for n, line in outside_fences(path)
            if line.startswith("    ") and re.search(r"(^|/)modelpack\s", line.strip())]


ALL_BLOCKS = [b for f in FILES for b in fenced_blocks(f)]


def _yaml(text: str):
    """The parsed block, or None when it is not YAML (the recipe test then reports why)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


def is_workflow(data) -> bool:
    """A GitHub Actions workflow: its `run:` steps are checked as commands, the rest is not a recipe."""
    return isinstance(data, dict) and "jobs" in data and "model" not in data


def workflow_commands(block: Block) -> str:
    data = yaml.safe_load(block.text)
    runs = [step["run"] for job in data["jobs"].values() for step in job.get("steps", []) if "run" in step]
    return "\n".join(runs) + "\n"


def yaml_blocks() -> list[Block]:
    return [b for b in ALL_BLOCKS if b.lang in RECIPE_LANGS and not is_workflow(_yaml(b.text))]


def command_blocks() -> list[Block]:
    blocks = [b for b in ALL_BLOCKS if b.lang in COMMAND_LANGS]
    blocks += [Block(b.path, b.line, "sh", workflow_commands(b), b.invalid) for b in ALL_BLOCKS
               if b.lang in RECIPE_LANGS and is_workflow(_yaml(b.text))]
    blocks += [b for f in FILES for b in indented_commands(f)]
    return [b for b in blocks if commands_of(b)]


def commands_of(block: Block) -> list[list[str]]:
    return modelpack_commands(block.text, prompts_only=block.lang == "console")


def modelpack_commands(text: str, prompts_only: bool = False) -> list[list[str]]:
    """The argument lists of every `modelpack` invocation in shell text (after the program name). With
    prompts_only (a console session), only lines after a `$ ` prompt are commands; the rest is output."""
    text = GHA_EXPRESSION.sub(GHA_PLACEHOLDER, text.replace("\\\n", " "))
    found, pending = [], ""
    for line in text.splitlines():
        if prompts_only and not pending and not line.startswith("$ "):
            continue
        line = pending + line.strip().removeprefix("$ ")
        if not line or line.startswith("#"):
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        try:
            tokens = list(lexer)
        except ValueError:  # a quoted string goes on on the next line
            pending = line + "\n"
            continue
        pending, segment = "", []
        for token in [*tokens, ";"]:
            if OPERATOR.match(token):
                if segment and (segment[0] == "modelpack" or segment[0].endswith("/modelpack")):
                    found.append(segment[1:])
                segment = []
            else:
                segment.append(token)
    if pending:
        raise ValueError(f"no closing quotation in {pending!r}")
    return found


# --- every block is classified ------------------------------------------------------------------------------


def test_blocks_are_found():
    """Guards the extraction itself: a parser that found nothing would pass every other test."""
    assert len(DOCS) >= 10 and len(ALL_BLOCKS) >= 20
    assert len(yaml_blocks()) >= 5
    assert sum(len(commands_of(b)) for b in command_blocks()) >= 20


def test_every_fenced_block_names_a_known_language():
    known = COMMAND_LANGS | RECIPE_LANGS | OTHER_LANGS
    untagged = [b.id for b in ALL_BLOCKS if not b.lang]
    assert not untagged, f"fenced blocks without a language tag (yaml, sh, json, text, ...): {untagged}"
    unknown = [f"{b.id} ({b.lang})" for b in ALL_BLOCKS if b.lang not in known]
    assert not unknown, f"add the language to the test's classification, or use a known one: {unknown}"


def test_every_invalid_marker_is_on_an_exercised_block():
    exercised = {b.id for b in yaml_blocks() + command_blocks()}
    stray = [b.id for b in ALL_BLOCKS if b.invalid and b.id not in exercised]
    assert not stray, f"{INVALID} marks blocks the tests do not check: {stray}"


# --- recipes and recipe fragments --------------------------------------------------------------------------


def _placeholder(folder: Path, name: str, template: Path) -> None:
    """A stand-in for a file a recipe names: a copy of the shipped example's model or data."""
    target = folder / name
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix:
        shutil.copyfile(template, target)
    else:  # a SavedModel directory
        target.mkdir()
        (target / "saved_model.pb").write_bytes(b"")


def _merge(base: dict, fragment: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in fragment.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def recipe_for(block: Block, folder: Path) -> Path:
    """Write the block as a recipe into folder: a whole recipe as it is, a fragment merged into the digits one."""
    data = yaml.safe_load(block.text)
    if isinstance(data, list):  # a list of target mappings
        data = {"targets": data}
    assert isinstance(data, dict), f"{block.id}: a yaml block is a recipe, a fragment of one, or a workflow"
    if not ("name" in data and "model" in data):
        data = _merge(yaml.safe_load((DIGITS / "recipe.yaml").read_text()), data)
    model = (data.get("model") or {}).get("path") if isinstance(data.get("model"), dict) else None
    if isinstance(model, str) and not Path(model).is_absolute():
        _placeholder(folder, model, DIGITS / "model.keras")
    source = (data.get("data") or {}).get("path") if isinstance(data.get("data"), dict) else None
    if isinstance(source, str) and not Path(source).is_absolute() and not re.match(r"^[\w.]+:\w+$", source):
        _placeholder(folder, source, DIGITS / "digits.npz")
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize("block", yaml_blocks(), ids=lambda b: b.id)
def test_recipe_block_validates(block: Block, tmp_path: Path):
    if block.invalid:
        with pytest.raises((RecipeError, yaml.YAMLError)):
            load_recipe(recipe_for(block, tmp_path))
        return
    load_recipe(recipe_for(block, tmp_path))


def test_fragments_are_merged_not_ignored(tmp_path: Path):
    """A fragment's keys reach the recipe that is validated (a misspelled key would fail)."""
    block = Block(README, 0, "yaml", "- {kind: lambda-function, endpont: none}\n", False)
    with pytest.raises(RecipeError, match="endpont"):
        load_recipe(recipe_for(block, tmp_path))


# --- commands ----------------------------------------------------------------------------------------------


def _remaining(ctx: click.Context) -> list[str]:
    protected = ctx._protected_args if hasattr(ctx, "_protected_args") else ctx.protected_args
    return [*protected, *ctx.args]


def parse(args: list[str]) -> click.Context:
    """Parse args as `modelpack` would, down to the subcommand, without running anything."""
    ctx = cli.make_context("modelpack", list(args), resilient_parsing=False)
    while isinstance(ctx.command, click.Group):
        rest = _remaining(ctx)
        if not rest:
            raise click.UsageError("missing command", ctx)
        name, sub, sub_args = ctx.command.resolve_command(ctx, rest)
        assert sub is not None
        ctx = sub.make_context(name, sub_args, parent=ctx)
    return ctx


def _make_paths(args: list[str]) -> None:
    """Create the relative paths an example names (files when they have a suffix, else folders), so that
    arguments checked for existence are judged on their syntax alone."""
    for arg in args:
        if arg.startswith("-") or Path(arg).is_absolute() or ".." in Path(arg).parts:
            continue
        if "/" not in arg and not re.search(r"\.[A-Za-z]\w*$", arg):
            continue
        path = Path(arg)
        if path.exists():
            continue
        if path.suffix:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}\n")
        else:
            path.mkdir(parents=True, exist_ok=True)


@pytest.fixture
def scratch_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import os

    for name in [n for n in os.environ if n.startswith("MODELPACK_")]:
        monkeypatch.delenv(name)  # options from the environment would change what the examples mean
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("block", command_blocks(), ids=lambda b: b.id)
def test_command_block_parses(block: Block, scratch_cwd: Path):
    for args in commands_of(block):
        _make_paths(args)
        if block.invalid:
            with pytest.raises(click.UsageError):
                parse(args)
            continue
        try:
            parse(args)
        except click.exceptions.Exit as exc:  # --help or --version
            assert exc.exit_code == 0
        except click.UsageError as exc:
            pytest.fail(f"{block.id}: `modelpack {shlex.join(args)}`: {exc.format_message()}")


@pytest.mark.parametrize("args", [
    ["build", "recipe.yaml", "--outt", "dist/x"],
    ["invoke", "dist/x", "--event", "e.json", "--target", "gcp"],
    ["cache", "purge"],
    ["tune", "dist/x", "--since"],
    ["bench"],
])
def test_the_parser_refuses_what_the_cli_refuses(args: list[str], scratch_cwd: Path):
    _make_paths(args)
    with pytest.raises(click.UsageError):
        parse(args)


def test_shell_text_is_split_into_modelpack_commands():
    text = ("$ modelpack -q build r.yaml --json | jq -r .selected\n"
            "python3 -m venv .venv && .venv/bin/modelpack build a/b.yaml\n"
            "modelpack tune d \\\n  --function f   # a comment\n"
            "curl -s localhost:8080/predict\n# modelpack commented out\n"
            'modelpack publish "${{ steps.build.outputs.dist }}"\n')
    assert modelpack_commands(text) == [["-q", "build", "r.yaml", "--json"], ["build", "a/b.yaml"],
                                        ["tune", "d", "--function", "f"], ["publish", GHA_PLACEHOLDER]]
    session = "$ modelpack validate r.yaml\nerror: modelpack refused it (it's invalid)\n"
    assert modelpack_commands(session, prompts_only=True) == [["validate", "r.yaml"]]


# --- README and links --------------------------------------------------------------------------------------

LINK = re.compile(r"\]\(([^)\s]+)\)")


def relative_links(path: Path) -> list[tuple[int, str]]:
    text_lines = outside_fences(path)
    links = []
    for n, line in text_lines:
        line = re.sub(r"`[^`]*`", "", line)  # code spans are not links
        links += [(n, target) for target in LINK.findall(line)
                  if not re.match(r"^[a-z][a-z0-9+.-]*:", target)]  # http:, https:, mailto:
    return links


def test_readme_is_short_and_links_every_doc():
    text = README.read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    linked = {target.split("#")[0] for _, target in relative_links(README)}
    missing = [f"docs/{d.name}" for d in DOCS if f"docs/{d.name}" not in linked]
    assert not missing, f"README.md does not link {missing}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_existing_files(path: Path):
    broken = [f"{path.name}:{n} {target}" for n, target in relative_links(path)
              if target.split("#")[0] and not (path.parent / target.split("#")[0]).exists()]
    assert not broken, broken


def heading_anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the headings: lower case, punctuation dropped, spaces as dashes, -1 for repeats."""
    anchors, seen = set(), {}
    for _, line in outside_fences(path):
        if m := re.match(r"^#{1,6}\s+(.*)", line):
            slug = re.sub(r"[^\w\- ]", "", m[1].strip().lower()).replace(" ", "-")
            anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
            seen[slug] = seen.get(slug, 0) + 1
    return anchors


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_anchors_point_to_headings(path: Path):
    broken = []
    for n, target in relative_links(path):
        file, _, anchor = target.partition("#")
        linked = (path.parent / file) if file else path
        if anchor and linked.suffix == ".md" and linked.exists() and anchor not in heading_anchors(linked):
            broken.append(f"{path.name}:{n} {target}")
    assert not broken, broken
