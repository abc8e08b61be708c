"""What several test modules share: the repository's paths, builds of the shipped example, tiny generated
handlers, fresh imports of serving code, processes and ports, the services the tests start, a recording
browser, AWS on loopback, crafted production traffic and report.json's stable shape. Fixtures stay in
tests/conftest.py; everything here is plain functions and constants."""
