"""The recipe: pydantic models of every section (`models`, `targets`, `serving`, `endpoint`), the loader that
reports every problem at once with file, line and field path (`loader`), the JSON Schema and its reference table
(`schema`), the recipe `bench MODEL` writes (`adhoc`), and the one `init` writes from a model and data (`starter`)."""
