"""What the build reads: the model file and the data a recipe names.

`modelfile` recognises a model by its content and fingerprints it, `safety` refuses models that would run code
at load time unless trusted, `data` loads named arrays and draws seeded splits (`data_function` runs a recipe's
data function in a child process), `precheck` holds the TensorFlow-free checks `validate` and `build` share,
`task` says which output the task scores, and `keras_io` loads a Keras model or SavedModel (worker side only:
it imports TensorFlow).
"""
