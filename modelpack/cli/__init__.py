"""The `modelpack` command line: a thin layer that parses arguments, calls the library and maps errors to exit codes.

`main` holds the click group, its global options and the signal handling, and registers one module per command
family: `recipe` (validate, schema, init), `build` (build, bench), `inspect`, `invoke`, `serve`, `publish`,
`tune` and `cache`. `common` holds what every command shares (settings, error mapping); `tables` prints the
variant table. Heavy modules are imported inside the commands, so `--help` and `validate` never load TensorFlow.
"""
