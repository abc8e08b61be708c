"""The "Next steps" a build prints and appends to report.md: the exact commands for what it built.

Everything comes from report.json (each artifact's target, path and details), so the same commands can be
produced again from any dist. `dist` is how the commands name the output folder: its path after a build,
`.` inside report.md (which lives in that folder).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

EVENT = Path("events") / "predict.json"  # the sample request every build writes into its dist


@dataclass(frozen=True)
class Step:
    title: str
    commands: tuple[str, ...]


def _q(path: Path | str) -> str:
    return shlex.quote(str(path))


def _event(dist: Path) -> str:
    return _q(dist / EVENT)


def _serve(dist: Path, target: str, route: str | None) -> Step:
    """`route`: the predict route the build configured, as its artifact's details give it (None from a build that
    did not record it: the banner then names it)."""
    flag = "" if target == "lambda" else f" --target {target}"
    v2 = "/api/v2/..." if target == "azure" else "/v2/..."
    routes = f"POST {route}, {v2}" if route else f"the routes it lists, {v2}"
    return Step(f"Serve it over HTTP on 127.0.0.1:8080 for curl and real clients ({routes})",
                (f"modelpack serve {_q(dist)}{flag}",))


def _call(endpoint: str, auth: str, dist: Path) -> Step | None:
    if endpoint == "none":
        return None
    sign = ""
    if auth == "iam":
        service = "lambda" if endpoint == "function-url" else "execute-api"
        sign = (f'--aws-sigv4 "aws:amz:$AWS_REGION:{service}" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" '
                '-H "x-amz-security-token: $AWS_SESSION_TOKEN" ')
    return Step("Call the endpoint (ENDPOINT_URL: printed by publish, or the stack's EndpointUrl output)",
                (f"curl {sign}-H 'content-type: application/json' -d @{_event(dist)} \"$ENDPOINT_URL\"",))


def _lambda_function(art: dict, name: str, dist: Path) -> list[Step]:
    if art["path"] != "lambda/template.yaml":
        return [Step("Run the function locally under the Lambda emulator",
                     (f"modelpack invoke {_q(dist)} --event {_event(dist)}",)),
                _serve(dist, "lambda", (art.get("details") or {}).get("route"))]
    details = art.get("details") or {}
    steps = [Step("Deploy with AWS SAM (creates the layer, function, role and endpoint)",
                  (f"sam deploy --template-file {_q(dist / art['path'])} --stack-name {_q(name)} --resolve-s3 "
                   "--capabilities CAPABILITY_IAM",)),
             Step("Or publish without CloudFormation (layer version, function, version, alias 'live', URL)",
                  (f"modelpack publish {_q(dist)} --target lambda --region \"$AWS_REGION\"",))]
    call = _call(details.get("endpoint", "none"), details.get("auth", "iam"), dist)
    return steps + ([call] if call else [])


def _lambda_split(art: dict, name: str, dist: Path) -> list[Step]:
    if not art["path"].endswith("template.yaml"):
        return []
    details = art.get("details") or {}
    steps = [Step("Run the split model's chain locally", (f"modelpack invoke {_q(dist)} --target lambda-split "
                                                          f"--event {_event(dist)}",)),
             Step("Deploy the split model with AWS SAM",
                  (f"sam deploy --template-file {_q(dist / art['path'])} --stack-name {_q(name + '-split')} "
                   "--resolve-s3 --capabilities CAPABILITY_IAM",))]
    call = _call(details.get("endpoint", "none"), details.get("auth", "iam"), dist)
    return steps + ([call] if call else [])


def _azure_functions(art: dict, name: str, dist: Path) -> list[Step]:
    return [Step("Call the function app locally", (f"modelpack invoke {_q(dist)} --target azure --event {_event(dist)}",)),
            _serve(dist, "azure", (art.get("details") or {}).get("route")),
            Step("Deploy the zip (dependencies included, no remote build)",
                 (f"az functionapp deployment source config-zip -g \"$RESOURCE_GROUP\" -n \"$APP_NAME\" "
                  f"--src {_q(dist / art['path'])}",
                  f"cd {_q(dist / 'azure' / 'functionapp')} && func azure functionapp publish \"$APP_NAME\" --no-build")),
            _azure_call(art.get("details") or {}, dist)]


def _azure_call(details: dict, dist: Path) -> Step:
    """How to call the deployed app: with auth_level function (the default) or admin, requests carry a key."""
    route = details.get("route") or "/api/predict"
    url = f"https://$APP_NAME.azurewebsites.net{route}"
    post = f"curl -H 'content-type: application/json' -d @{_event(dist)}"
    level = details.get("auth_level", "function")
    if level == "anonymous":
        return Step("Call the deployed app (auth_level anonymous: no key)", (f'{post} "{url}"',))
    fetch = ('KEY=$(az functionapp function keys list -g "$RESOURCE_GROUP" -n "$APP_NAME" --function-name predict '
             '--query default -o tsv)' if level == "function" else
             'KEY=$(az functionapp keys list -g "$RESOURCE_GROUP" -n "$APP_NAME" --query masterKey -o tsv)')
    return Step(f"Call the deployed app (auth_level {level}: send a {'function' if level == 'function' else 'master'} "
                "key as x-functions-key, or ?code=)", (fetch, f'{post} -H "x-functions-key: $KEY" "{url}"'))


def _image(art: dict, name: str, dist: Path) -> list[Step]:
    details = art.get("details") or {}
    tag, context = details.get("tag", f"{name}:latest"), dist / Path(art["path"]).parent
    if details.get("image"):  # built and smoke-tested here: push that very image
        repository = details.get("push_to") or "$REGISTRY/$REPOSITORY"
        return [Step(f"Push the {art['target']} image (prints the pushed digest)",
                     (f"modelpack publish {_q(dist)} --target {art['target']} --repository \"{repository}\"",))]
    return [Step(f"Build the {art['target']} image", (f"docker build -t {_q(tag)} {_q(context)}",)),
            Step(f"Push the {art['target']} image to your registry",
                 (f"docker tag {_q(tag)} \"$REGISTRY/{tag}\"", f"docker push \"$REGISTRY/{tag}\""))]


STEPS: dict[str, Callable[[dict, str, Path], list[Step]]] = {
    "lambda-function": _lambda_function,
    "lambda-split": _lambda_split,
    "azure-functions": _azure_functions,
    "lambda-image": _image,
    "azure-image": _image,
}


def next_steps(report_json: dict, dist: Path) -> list[Step]:
    steps: list[Step] = []
    for art in report_json.get("artifacts", []):
        make = STEPS.get(art["target"])
        if make:
            steps += [s for s in make(art, report_json["name"], Path(dist)) if s not in steps]
    return steps


def next_steps_text(report_json: dict, dist: Path) -> str:
    steps = next_steps(report_json, dist)
    if not steps:
        return ""
    lines = ["Next steps:"]
    for step in steps:
        lines.append(f"  # {step.title}")
        lines += [f"  {c}" for c in step.commands]
    return "\n".join(lines)


def next_steps_markdown(report_json: dict, dist: Path) -> str:
    """The "## Next steps" section of report.md (commands name the dist as `dist`)."""
    steps = next_steps(report_json, dist)
    if not steps:
        return ""
    where = "this report's folder" if str(dist) == "." else f"the folder that holds `{dist}`"
    parts = ["## Next steps", "", f"Run from {where}; `{EVENT}` is the sample request the build wrote "
             "(`events/` has it in every format).", ""]
    for step in steps:
        parts += [f"{step.title}:", "", "```bash", *step.commands, "```", ""]
    return "\n".join(parts)


def with_next_steps(markdown: str, report_json: dict) -> str:
    """report.md with the Next steps section appended (the report lives in the dist, so the dist is `.`)."""
    section = next_steps_markdown(report_json, Path("."))
    return markdown.rstrip("\n") + "\n\n" + section if section else markdown
