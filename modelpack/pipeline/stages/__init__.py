"""The build's stages, one module each, named as the stage: every module has `run(state)`, and
modelpack.pipeline.build lists them in order with the BuildState fields each reads and writes."""
