"""The serving runtime: handler entry files and the shared modules copied into every built artifact.

Nothing here is imported by modelpack itself; the files are copied flat into packages and images.
"""
