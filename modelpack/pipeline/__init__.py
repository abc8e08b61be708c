"""The build: recipe in; converted, measured and judged variants, artifacts and a report out.

`build.STAGES` lists the stages in order (each a `stage.Stage` whose code is `stages/<name>.py`), and
`build.Builder.run` runs them over one `state.BuildState`; `entry` holds `build()` and `bench()`. A stage
schedules Jobs (`jobs`: a step with its inputs, through the cache and the worker). TensorFlow never loads in this
process: steps run in a worker process (modelpack.steps.worker) and measurements in fresh probe processes
(modelpack.measure.probe).
"""
