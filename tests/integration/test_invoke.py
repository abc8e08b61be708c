"""`modelpack invoke` as a SAM user runs it: `-e`, the package's own sample without an event, the shipped
Open Inference Protocol and binary events, `--path`/`--method`, and the status the handler answered (a 4xx is
an error, never `status: ok`). All on the session's digits build, under the real emulator and Azure app."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from modelpack.cli.main import cli

pytestmark = pytest.mark.slow


def invoke(*args: str):
    return CliRunner().invoke(cli, ["invoke", *args])


def test_lambda_sample_oip_and_npy_events(digits_dist):
    out = digits_dist.out
    result = invoke(str(out), "-e", str(out / "events" / "oip.json"), "-e", str(out / "events" / "predict.npy"),
                    "--json")
    assert result.exit_code == 0, result.output
    oip, npy = (json.loads(line) for line in result.stdout.splitlines())
    assert oip["status"] == "ok" and oip["http_status"] == 200, oip
    assert oip["sent_as"] == "an Open Inference Protocol body, so POST /v2/models/digits/infer"
    body = json.loads(oip["response"]["body"])
    assert body["model_name"] == "digits" and body["outputs"][0]["shape"][0] == 2
    assert npy["http_status"] == 200 and len(json.loads(npy["response"]["body"])["predictions"]) == 2
    assert npy["sent_as"] == "a application/x-npy body"

    default = invoke(str(out))  # no event: the package's own events/predict.json
    assert default.exit_code == 0, default.output
    assert default.output.startswith("# predict.json: HTTP 200") and '"predictions"' in default.output

    ready = invoke(str(out), "--path", "/v2/health/ready", "--method", "GET")
    assert ready.exit_code == 0 and "# (no body): HTTP 200" in ready.output, ready.output


def test_an_error_status_is_reported_and_exits_1(digits_dist, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"instances": [[1.0, 2.0]]}))
    good = digits_dist.out / "events" / "predict.json"
    result = invoke(str(digits_dist.out), "-e", str(good), "-e", str(bad), "--json")
    assert result.exit_code == 1, result.output
    first, second, failure = (json.loads(line) for line in result.stdout.splitlines())
    assert (first["status"], first["http_status"]) == ("ok", 200)
    assert failure["ok"] is False and failure["exit_code"] == 1  # --json ends a failed run with its error object
    assert (second["status"], second["http_status"]) == ("error", 400) and "error" in second["response"]
    assert "answered an error status to 1 of 2 event(s): bad.json: HTTP 400" in result.stderr
    human = invoke(str(digits_dist.out), "-e", str(bad))
    assert human.exit_code == 1 and "# bad.json: HTTP 400" in human.output and "status: ok" not in human.output


def test_azure_takes_binary_and_oip_events(digits_dist, tmp_path):
    out = digits_dist.out
    result = invoke(str(out), "--target", "azure", "-e", str(out / "events" / "predict.npy"),
                    "-e", str(out / "events" / "oip.json"), "--json")
    assert result.exit_code == 0, result.output
    npy, oip = (json.loads(line) for line in result.stdout.splitlines())
    assert npy["http_status"] == 200 and len(npy["response"]["predictions"]) == 2, npy
    assert oip["http_status"] == 200 and oip["response"]["model_name"] == "digits", oip
    text = tmp_path / "notes.txt"
    text.write_text("not a request\n")
    refused = invoke(str(out), "--target", "azure", "-e", str(text))
    assert refused.exit_code == 2 and "not valid JSON" in refused.output
    assert ".npy, .npz, PNG or JPEG" in refused.output and "Traceback" not in refused.output


def test_azure_routes_by_the_exact_configured_route(digits_dist):
    """The app's route is `score`: only /api/score (or /score) reaches predict; a path merely holding it, or
    holding /v2/ after it, is the Functions host's 404, never another function's answer."""
    out, event = digits_dist.out, str(digits_dist.out / "events" / "predict.json")
    for path in ("/api/score", "/score", "/api/score/"):
        result = invoke(str(out), "--target", "azure", "-e", event, "--path", path, "--json")
        assert result.exit_code == 0, (path, result.output)
        assert len(json.loads(result.stdout.splitlines()[0])["response"]["predictions"]) == 2
    for path in ("/api/score2", "/api/scoreboard", "/api/x/score", "/api/score/v2/models/digits"):
        result = invoke(str(out), "--target", "azure", "-e", event, "--path", path, "--json")
        answer = json.loads(result.stdout.splitlines()[0])
        assert result.exit_code == 1 and answer["http_status"] == 404, (path, result.output)
        assert "no function of this app answers" in answer["response"]["error"] and "/api/score" in \
            answer["response"]["error"]
