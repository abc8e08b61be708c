"""Measuring a model file: `runner` starts probes in fresh processes and `probe` measures inside one (size,
outputs, warm latency, cold start, peak memory, importing only the model's runtime); `metrics` turns outputs
into task metrics, fidelity and latency statistics; `memory_curve` gives latency and cost at each Lambda memory
size."""
