"""`kind: azure-functions`: a Python v2 function app with .python_packages, zipped for run-from-package."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from modelpack import limits
from modelpack.files.output import tree_bytes
from modelpack.host import interpreters
from modelpack.recipe.targets import AzureFunctionsSpec
from modelpack.targets import handler_files, serving_options, sitepackages
from modelpack.targets.base import Artifact, Target
from modelpack.targets.runtimes import selected_runtime

if TYPE_CHECKING:
    from modelpack.targets.context import BuildContext

SITE = ".python_packages/lib/site-packages"
LOCAL_SETTINGS = "local.settings.json"
HEADROOM_MB = 128  # the worker process itself, beyond the model's own cold-start peak


class AzureFunctionsTarget(Target):
    """Azure Functions app: v2 function_app.py, host.json, .python_packages, run-from-package zip."""

    NAME = "azure-functions"
    Spec = AzureFunctionsSpec

    def build(self, ctx: BuildContext, out_dir: Path) -> list[Artifact]:
        spec: AzureFunctionsSpec = self.spec  # type: ignore[assignment]
        model = ctx.selected_file
        runtime = selected_runtime(ctx)
        os_name, glibc = limits.AZURE_OS
        interpreter = interpreters.find(spec.python, spec.interpreter)
        can_run = interpreter is not None and interpreters.host_arch() == "x86_64"
        tree = sitepackages.cached(ctx, runtime, spec.python, "x86_64", glibc, os_name, spec.versions,
                                   interpreter if can_run else None, model)
        info = dict(ctx.read_tree_info(tree))
        if info.get("note"):
            ctx.report.notes.append(f"{spec.identity()}: {info['note']}")

        app = out_dir / "azure" / "functionapp"
        handler_files.write(ctx, app, ("azure", "function_app.py"), model_in_layer=False, source=spec.model_source,
                            options={**spec.response_options(), "load": "lazy",
                                     "payload_limit_bytes": int(spec.max_request_mb * limits.MB),
                                     "azure": {"route": spec.route, "auth_level": spec.auth_level,
                                               "app_name": spec.app_name}, **serving_options.config(spec)})
        templates = handler_files.template_dir("azure")
        shutil.copyfile(templates / "host.json", app / "host.json")
        shutil.copyfile(templates / "funcignore", app / ".funcignore")
        shutil.copytree(tree, app / SITE, ignore=sitepackages.bookkeeping(tree))
        extras = serving_options.extra_packages(spec) + serving_options.request_packages(ctx)
        if extras:
            sitepackages.install_extra(app / SITE, extras, spec.python, "x86_64", glibc, ctx)
        installed = info["installed"]
        info.update(serving_options.request_details(ctx, app / SITE),
                    handler_bytecode=handler_files.ship_bytecode(app, interpreter, ctx))
        (app / "requirements.txt").write_text(
            "".join(f"{name}=={installed[name]}\n" for name in sorted(installed))
            + "".join(f"{e}\n" for e in extras) + f"{limits.AZURE_FUNCTIONS_PACKAGE}\n"
        )
        if spec.upload and spec.model_source:
            info["upload"] = serving_options.upload(spec.model_source, model)
        # An example for `func start`; it never goes into the deployment zip.
        shutil.copyfile(templates / "local.settings.json", app / LOCAL_SETTINGS)

        unzipped = tree_bytes(app) - (app / LOCAL_SETTINGS).stat().st_size
        ctx.zip_tree(app, out_dir / "azure" / "functionapp.zip", exclude=(LOCAL_SETTINGS,))
        peak = (ctx.report.variant(ctx.report.selected) or {}).get("peak_rss_mb")
        fits = {str(mb): (peak is not None and peak + HEADROOM_MB <= mb) for mb in limits.AZURE_FLEX_INSTANCE_MB}
        info.update(python=spec.python, runtime=runtime.name, route=f"/api/{spec.route}", auth_level=spec.auth_level,
                    flex_instance_fits=fits, peak_rss_mb=peak, headroom_mb=HEADROOM_MB, **serving_options.describe(spec),
                    model_in="source" if spec.model_source else "package",
                    **({"packages_added": list(extras)} if extras else {}))
        if not any(fits.values()):
            ctx.report.notes.append(f"{spec.identity()}: the model's peak memory ({peak} MB + {HEADROOM_MB} MB worker "
                                    "headroom) fits no Flex Consumption instance size; use Premium or Dedicated.")
        return [Artifact(self.NAME, "azure/functionapp.zip", unzipped, info)]
