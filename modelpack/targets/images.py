"""`kind: lambda-image` and `kind: azure-image`: a self-contained build context, optionally built and smoke-tested.

The context holds a Dockerfile rendered from modelpack/serving/, the same load-once handler as the zip targets,
the model, and the runtime's site-packages installed here for the image's platform, so the image build
needs no network. With `build: true` (or `modelpack build --images`) the image is built through the Docker
SDK and a container with networking disabled serves one sample, compared with the selected variant.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from modelpack import limits
from modelpack.errors import TargetError
from modelpack.files.output import normalize_modes, sha256_file, tree_bytes
from modelpack.host import childproc, engine, interpreters
from modelpack.recipe.targets import AzureImageSpec, ImageSpecBase, LambdaImageSpec
from modelpack.targets import handler_check, handler_files, image_push, serving_options, sitepackages
from modelpack.targets.base import Artifact, Target
from modelpack.targets.runtimes import selected_runtime

if TYPE_CHECKING:
    from modelpack.targets.context import BuildContext

SMOKE = "MODELPACK_SMOKE"

class _ImageTarget(Target):
    """Shared by both images: only the template, the app layout, extras and the smoke command differ."""

    TEMPLATE: ClassVar[str]
    APP_DIR: ClassVar[str]  # where, inside the context, the handler files go
    SITE_DIR: ClassVar[str]  # where, inside the context, site-packages go
    EXTRAS: ClassVar[tuple[str, ...]] = ()

    def default_base(self, python: str) -> str:
        raise NotImplementedError

    def known_glibc(self, base: str) -> tuple[int, int] | None:
        return None

    def entry(self) -> tuple[str, str]:
        raise NotImplementedError

    def options(self, spec) -> dict:
        return {}

    def entrypoint(self, base: str) -> str:
        return ""

    def extras(self, base: str) -> tuple[str, ...]:
        return self.EXTRAS

    def smoke_script(self) -> str:
        """Python run in the container: answer /modelpack-smoke/event.json, print MODELPACK_SMOKE <json>."""
        raise NotImplementedError

    def add_files(self, app: Path) -> None:
        """Platform files beside the handler."""

    def build(self, ctx: BuildContext, out_dir: Path) -> list[Artifact]:
        spec: ImageSpecBase = self.spec  # type: ignore[assignment]
        model = ctx.selected_file
        runtime = selected_runtime(ctx)
        base = spec.base_image or self.default_base(spec.python)
        glibc = tuple(int(p) for p in spec.glibc.split(".")) if spec.glibc else (self.known_glibc(base) or (2, 28))
        arch = interpreters.host_arch()
        interpreter = interpreters.find(spec.python)
        tree = sitepackages.cached(ctx, runtime, spec.python, arch, glibc, f"the base image {base}", spec.versions,
                                   interpreter, model)
        info = dict(ctx.read_tree_info(tree))

        context = out_dir / "images" / self.NAME
        app = context / self.APP_DIR
        handler_files.write(ctx, app, self.entry(), model_in_layer=False, options={
            **spec.response_options(), "load": "lazy",
            "payload_limit_bytes": limits.LAMBDA_SYNC_PAYLOAD_BYTES, **self.options(spec)})
        self.add_files(app)
        site = context / self.SITE_DIR
        shutil.copytree(tree, site, ignore=sitepackages.bookkeeping(tree))
        extras = self.extras(base) + serving_options.request_packages(ctx)
        if extras:
            sitepackages.install_extra(site, extras, spec.python, arch, glibc, ctx)
        info["handler_bytecode"] = handler_files.ship_bytecode(app, interpreter, ctx)
        dockerfile = (handler_files.template_dir(self.TEMPLATE) / "Dockerfile").read_text()
        dockerfile = dockerfile.replace("{{BASE_IMAGE}}", base).replace("{{ENTRYPOINT}}", self.entrypoint(base))
        (context / "Dockerfile").write_text(dockerfile)
        normalize_modes(context)  # COPY keeps modes, and the site-packages came from a 0700 cache folder
        context_sha = sha256_file(context / "Dockerfile")[:6] + sha256_file(app / "modelpack.json")[:6]
        tag = f"{ctx.recipe.name}-{self.NAME}:{ctx.report.modelpack_version}-{context_sha}".lower()
        info.update(base_image=base, glibc=f"{glibc[0]}.{glibc[1]}", python=spec.python, tag=tag,
                    context_bytes=tree_bytes(context), extras=list(extras), image=None,
                    **serving_options.request_details(ctx, site))
        if spec.build or ctx.options.get("images"):
            info["image"] = self._build_image(ctx, spec, context, tag)
        if spec.push:
            info["push_to"] = spec.push
            self._push(ctx, spec, info)
        return [Artifact(self.NAME, f"images/{self.NAME}/Dockerfile", None, info)]

    def _push(self, ctx: BuildContext, spec: ImageSpecBase, info: dict) -> None:
        if info["image"] is None:
            ctx.report.notes.append(f"{spec.identity()}: push: {spec.push} skipped, no image was built (set "
                                    "build: true or run modelpack build --images).")
            return
        client, why = engine.connect()
        try:
            info["image"]["push"] = image_push.push(client, info["tag"], spec.push) if client else None
        except RuntimeError as exc:
            raise TargetError(f"{exc}. Check that {spec.push.split('/')[0]} is reachable and you are logged in.") from None
        if client is None:
            raise TargetError(f"push: {why}")

    def _build_image(self, ctx: BuildContext, spec: ImageSpecBase, context: Path, tag: str) -> dict | None:
        client, why = engine.connect()
        if client is None:
            if spec.build == "required":
                raise TargetError(f"{why}; the target says `build: required`. Start an engine (see "
                                  "scripts/container-engine.sh) or set DOCKER_HOST.")
            ctx.report.notes.append(f"{spec.identity()}: no image was built: {why}. The build context is in "
                                    f"images/{self.NAME}/; build it with `docker build`.")
            return None
        try:
            built = engine.build(client, context, tag, lambda line: ctx.reporter.info(f"  {line}"))
        except RuntimeError as exc:
            raise TargetError(str(exc)) from None
        sample = handler_check.request_sample(ctx)
        smoke = ctx.work / f"smoke-{self.NAME}"
        smoke.mkdir(exist_ok=True)
        (smoke / "event.json").write_text(json.dumps(handler_check.event(sample)))  # a file: events can be megabytes
        normalize_modes(smoke)  # read by the container's non-root user
        output, seconds = engine.run(client, tag, ["-c", self.smoke_script()], files=smoke, user=engine.NON_ROOT_USER)
        answer = childproc.read(output, SMOKE)  # found after azure-functions' logging prefix too
        if answer is None:
            raise TargetError(f"the smoke run in {tag} failed: {output.strip()[-300:]}")
        if "predictions" not in answer and "outputs" not in answer:
            raise TargetError(f"the smoke run in {tag} answered {str(answer)[:300]}")
        names = [o["name"] for o in ctx.info["outputs"]]
        err = handler_check.agree(answer, names, ctx.selected_outputs_first(), f"the smoke run in {tag}'s prediction",
                                  "the selected variant's")
        return {**built, "tag": tag, "smoke": {"ok": True, "seconds": round(seconds, 2), "max_abs_err_vs_variant": err,
                                               "network": "none", "user": engine.NON_ROOT_USER,
                                               "served_shapes": handler_check.shapes(sample)}}


class LambdaImageTarget(_ImageTarget):
    """Lambda container image: handler in the task root, runtime in /opt/python."""

    NAME = "lambda-image"
    Spec = LambdaImageSpec
    TEMPLATE = "lambda-image"
    APP_DIR = "app"
    SITE_DIR = "python"

    @classmethod
    def model_room(cls, spec: LambdaImageSpec) -> int | None:  # type: ignore[override]
        return limits.LAMBDA_IMAGE_BYTES

    def default_base(self, python: str) -> str:
        return f"public.ecr.aws/lambda/python:{python}"

    def known_glibc(self, base: str) -> tuple[int, int] | None:
        version = base.rsplit(":", 1)[-1]
        return limits.LAMBDA_RUNTIMES[version][1] if _is_aws(base) and version in limits.LAMBDA_RUNTIMES else None

    def entry(self) -> tuple[str, str]:
        return ("lambda", "handler.py")

    def entrypoint(self, base: str) -> str:
        # AWS's base images carry the runtime client; any other base needs awslambdaric as its entrypoint.
        return "" if _is_aws(base) else 'ENTRYPOINT ["python3", "-m", "awslambdaric"]'

    def extras(self, base: str) -> tuple[str, ...]:
        return () if _is_aws(base) else ("awslambdaric",)

    def smoke_script(self) -> str:
        return ("import json, sys; sys.path.insert(0, '/var/task'); import handler; "
                "r = handler.handler(json.load(open('/modelpack-smoke/event.json')), None); "
                + childproc.write_source(SMOKE, "r"))


class AzureImageTarget(_ImageTarget):
    """Azure Functions container image: the function app in /home/site/wwwroot."""

    NAME = "azure-image"
    Spec = AzureImageSpec
    TEMPLATE = "azure-image"
    APP_DIR = "app"
    SITE_DIR = "app/.python_packages/lib/site-packages"
    EXTRAS = ("azure-functions",)

    def default_base(self, python: str) -> str:
        return f"mcr.microsoft.com/azure-functions/python:4-python{python}"

    def known_glibc(self, base: str) -> tuple[int, int] | None:
        return limits.AZURE_OS[1] if base.startswith("mcr.microsoft.com/azure-functions/") else None

    def entry(self) -> tuple[str, str]:
        return ("azure", "function_app.py")

    def options(self, spec) -> dict:
        return {"azure": {"route": spec.route, "auth_level": spec.auth_level, "app_name": None}}

    def add_files(self, app: Path) -> None:
        shutil.copyfile(handler_files.template_dir("azure") / "host.json", app / "host.json")

    def smoke_script(self) -> str:
        return ("import json, sys; sys.path.insert(0, '/home/site/wwwroot'); import azure.functions as func; "
                "import function_app; fns = {f.get_function_name(): f.get_user_function() for f in "
                "function_app.app.get_functions()}; "
                "req = func.HttpRequest(method='POST', url='/api/predict', "
                "body=open('/modelpack-smoke/event.json', 'rb').read(), headers={'content-type': 'application/json'}); "
                "resp = fns['predict'](req); " + childproc.write_source(SMOKE, "json.loads(resp.get_body())"))


def _is_aws(base: str) -> bool:
    return base.startswith("public.ecr.aws/lambda/python")
