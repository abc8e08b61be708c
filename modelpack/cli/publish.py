"""`modelpack publish`: put a build into the cloud with the settings it was built with."""

from __future__ import annotations

from pathlib import Path

import click

from modelpack.cli.common import handle_errors


@click.command()
@click.argument("dist", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--target", default="lambda", show_default=True, help="What to publish: lambda, lambda-image, azure-image.")
@click.option("--function-name", help="Lambda function name [the recipe's name].")
@click.option("--region", help="AWS region [AWS_REGION / AWS_DEFAULT_REGION].")
@click.option("--s3-bucket", help="Bucket for zips over Lambda's 50 MB direct-upload limit.")
@click.option("--role", help="Execution role ARN [created: <function>-modelpack].")
@click.option("--repository", help="Images: REGISTRY/REPOSITORY to push to [the target's push:].")
@click.option("--dry-run", is_flag=True, help="Print the API calls instead of making them.")
@handle_errors
def publish(dist: Path, target: str, function_name: str | None, region: str | None, s3_bucket: str | None,
            role: str | None, repository: str | None, dry_run: bool) -> None:
    """Publish DIST (a build's output folder) to the cloud and print its endpoint."""
    from modelpack.publish import PublishOptions
    from modelpack.publish import publish as run_publish
    from modelpack.publish.report import print_result

    options = PublishOptions(dist, function_name=function_name, region=region, s3_bucket=s3_bucket, role=role,
                             repository=repository, dry_run=dry_run)
    print_result(run_publish(target, options, click.echo), dry_run, click.echo)
