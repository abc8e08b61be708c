"""The build: recipe in; converted, measured and judged variants, artifacts and a report out.

`build.STAGES` lists the stages in order (each a `stage.Stage`), `build.Builder.run` runs them and
`modelpack.pipeline.entry` holds `build()` and `bench()`. TensorFlow never loads in this process: steps run in
a worker process (modelpack.worker) and measurements in fresh probe processes (modelpack.measure.probe).
This package file stays empty so importing `modelpack.pipeline.context` (targets do) loads nothing else.
"""
