"""`modelpack publish`: put a build into the cloud with the settings it was built with."""

from __future__ import annotations

from pathlib import Path

import click

from modelpack.cli.common import handle_errors
from modelpack.cli.help import examples
from modelpack.errors import UsageError


@click.command(epilog=examples(
    "modelpack publish dist/digits --region eu-west-1 --dry-run     # print the calls and notes only",
    "modelpack publish dist/digits --region eu-west-1               # layer, function, version, alias, URL",
    "modelpack publish dist/digits --function-name digits-prod --region eu-west-1",
    "modelpack publish dist/digits --delete                         # remove what publish created",
    "modelpack publish dist/digits --target lambda-image --repository 123456789012.dkr.ecr.eu-west-1.amazonaws.com/digits"))
@click.argument("dist", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--target", default="lambda", show_default=True, help="What to publish: lambda, lambda-image, azure-image.")
@click.option("--function-name", help="Lambda function name [the recipe's name].")
@click.option("--region", help="AWS region [AWS_REGION / AWS_DEFAULT_REGION].")
@click.option("--s3-bucket", help="Bucket for zips over Lambda's 50 MB direct-upload limit.")
@click.option("--role", help="Execution role ARN [created: <function>-modelpack].")
@click.option("--repository", help="Images: REGISTRY/REPOSITORY to push to [the target's push:].")
@click.option("--dry-run", is_flag=True, help="Print the API calls and notes instead of making the calls.")
@click.option("--delete", is_flag=True,
              help="Remove what publish created from DIST (listed in DIST/publish.json), and nothing else.")
@handle_errors
def publish(dist: Path, target: str, function_name: str | None, region: str | None, s3_bucket: str | None,
            role: str | None, repository: str | None, dry_run: bool, delete: bool) -> None:
    """Publish DIST (a build's output folder) to the cloud and print its endpoint.

    Names and the region are checked before any call. What publish creates is recorded in DIST/publish.json
    as it goes (a rebuild keeps the file), so `--delete` can remove exactly that later, also after a failed
    publish. A service refusal is exit 1 with the service's message and what was created before it.
    """
    from modelpack.publish import PublishOptions
    from modelpack.publish import publish as run_publish
    from modelpack.publish.report import print_deleted, print_result

    options = PublishOptions(dist, function_name=function_name, region=region, s3_bucket=s3_bucket, role=role,
                             repository=repository, dry_run=dry_run)
    if delete:
        if target != "lambda" or function_name or s3_bucket or role or repository:
            raise UsageError("--delete removes what `publish --target lambda` recorded in DIST/publish.json; it takes "
                             "no other options than --region and --dry-run.")
        from modelpack.publish.unpublish import delete as run_delete

        print_deleted(run_delete(options, click.echo), dry_run, click.echo)
        return
    print_result(run_publish(target, options, click.echo), dry_run, click.echo)
