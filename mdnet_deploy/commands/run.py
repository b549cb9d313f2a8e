"""``mdnet-deploy run pipeline.yaml``: repeat a deploy, first saying which inputs and tools changed since it ran."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from ._common import console
from .deploy import deploy_options, run_and_render


@click.command(name="run")
@click.argument("pipeline", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Output folder [default: the one the pipeline recorded; needs --force to replace it].",
)
@click.option("--check", is_flag=True, help="Only say which inputs and tools changed; run nothing.")
@deploy_options
@click.pass_context
def command(ctx: click.Context, pipeline: Path, output: Path | None, check: bool, **values: Any) -> None:
    """Repeat the deploy recorded in PIPELINE (a pipeline.yaml written by deploy)."""
    from ..deploy import DeployConfig
    from ..deploy import pipeline_file as pf

    loaded = pf.read_pipeline(pipeline)
    options = dict(loaded.options)
    for key in ("inventory", "identity", "known_hosts"):
        if options.get(key):
            options[key] = Path(options[key])
    # An option typed now wins over the recorded one; --force and --accept-new-host-key are never recorded.
    for key, value in values.items():
        typed = ctx.get_parameter_source(key) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
        if typed or key not in options:
            options[key] = value
    config = DeployConfig(checkpoint=loaded.checkpoint, output=output or loaded.output, **options)
    if not Path(config.checkpoint).is_file():
        from ..errors import InputError

        raise InputError(
            f"the pipeline's checkpoint {config.checkpoint} does not exist; restore it or edit 'checkpoint' in {pipeline}"
        )

    current = pf.input_hashes(config)
    lines = pf.compare_inputs(loaded.inputs, current)
    tools = pf.compare_tools(loaded.tools, pf.tool_versions())
    changed = [line for line in lines if "unchanged" not in line]
    for line in lines:
        console.print(f"input {line}", markup=False, highlight=False, soft_wrap=True)
    for line in tools:
        console.print(f"tool {line}", markup=False, highlight=False, soft_wrap=True)
    console.print(
        f"{len(changed)} of {len(lines)} input(s) changed, {len(tools)} tool version(s) changed since {pipeline.name} was written",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if check:
        return
    run_and_render(config)
