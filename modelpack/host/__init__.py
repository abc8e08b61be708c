"""The build machine's own programs: fresh child processes with a scrubbed environment and pip (`childproc`),
Python interpreters of a given version (`interpreters`), and a container engine through the Docker SDK
(`engine`)."""
