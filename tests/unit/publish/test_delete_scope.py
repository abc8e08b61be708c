"""`modelpack publish --delete` removes only what the publish record says publish created: a version, alias or
URL of a function is removed as that part alone, never as the whole function, and an entry that does not say
which part is refused before any call. Dry runs: no AWS account needed."""

from __future__ import annotations

import json

from click.testing import CliRunner

from modelpack.cli.main import cli


def delete(tmp_path, resources: list[dict]):
    (tmp_path / "publish.json").write_text(json.dumps({"target": "lambda", "region": "eu-west-1",
                                                       "function_name": "theirs", "resources": resources}))
    return CliRunner().invoke(cli, ["publish", str(tmp_path), "--delete", "--dry-run"])


def test_a_version_of_a_function_publish_did_not_create_is_removed_alone(tmp_path):
    result = delete(tmp_path, [{"kind": "function-version", "name": "theirs", "detail": "7"},
                               {"kind": "alias", "name": "theirs", "detail": "live"}])
    assert result.exit_code == 0, result.output
    calls = [line for line in result.output.splitlines() if line.startswith("lambda.")]
    assert calls == ["lambda.delete_alias FunctionName=theirs Name=live",
                     "lambda.delete_function FunctionName=theirs Qualifier=7"], calls


def test_an_entry_without_its_detail_is_refused_before_any_call(tmp_path):
    for entry in ({"kind": "function-version", "name": "theirs"}, {"kind": "alias", "name": "theirs", "detail": ""},
                  {"kind": "s3-object", "name": "their-bucket", "detail": None}):
        result = delete(tmp_path, [{"kind": "role", "name": "theirs-modelpack"}, entry])
        text = " ".join(result.output.split())
        assert result.exit_code == 2, (entry, result.output)
        assert f"the {entry['kind']} entry of {entry['name']} has no detail" in text and "nothing was removed" in text
        assert "delete_" not in result.output and "detach" not in result.output
        assert json.loads((tmp_path / "publish.json").read_text())["resources"][1] == entry  # the record is kept
