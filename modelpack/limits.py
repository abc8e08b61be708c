"""Platform facts: every size limit, runtime fact and price lives here and nowhere else."""

from __future__ import annotations

MB = 1_000_000  # sizes in reports and budgets are decimal megabytes
MIB = 1024 * 1024

# AWS Lambda quotas.
LAMBDA_ZIP_DIRECT_UPLOAD_BYTES = 50 * MIB
LAMBDA_UNZIPPED_TOTAL_BYTES = 262_144_000
LAMBDA_MAX_LAYERS = 5
LAMBDA_IMAGE_BYTES = 10 * 1024**3  # a container image, uncompressed
LAMBDA_SYNC_PAYLOAD_BYTES = 6 * MB
# AWS Step Functions: the largest input or output a state may pass on (256 KiB, UTF-8).
STEP_FUNCTIONS_PAYLOAD_BYTES = 256 * 1024
LAMBDA_MEMORY_MB = (128, 10_240)
LAMBDA_MB_PER_VCPU = 1_769
LAMBDA_TIMEOUT_S = 900

# Lambda runtimes: Python version -> (OS, glibc).
LAMBDA_RUNTIMES = {
    "3.10": ("Amazon Linux 2", (2, 26)),
    "3.11": ("Amazon Linux 2", (2, 26)),
    "3.12": ("Amazon Linux 2023", (2, 34)),
    "3.13": ("Amazon Linux 2023", (2, 34)),
    "3.14": ("Amazon Linux 2023", (2, 34)),
}

# modelpack's own threshold: from this model size on each conversion runs in a worker of its own and ONNX
# conversion takes its memory-bounded route.
LARGE_MODEL_BYTES = 64 * 1024 * 1024

# A protobuf message (one ONNX file without external data) is at most 2 GiB.
PROTOBUF_MAX_BYTES = 2 * 1024**3

# Lambda prices, us-east-1, USD.
LAMBDA_PRICE_PER_GB_S = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
LAMBDA_PRICE_PER_REQUEST = 0.20 / 1_000_000
LAMBDA_BILLING_MS = 1  # duration is billed per started ms, at least one
# Provisioned concurrency, us-east-1, USD: per GB-s kept ready, and the duration price of what it serves.
LAMBDA_PROVISIONED_PER_GB_S = {"x86_64": 0.0000041667, "arm64": 0.0000033334}
LAMBDA_PROVISIONED_DURATION_PER_GB_S = {"x86_64": 0.0000097222, "arm64": 0.0000077778}
# Lambda SnapStart (Python 3.12+): not with container images, provisioned concurrency, EFS, or /tmp over 512 MB.
# Python and .NET functions pay to keep each published version's snapshot cached (per GB of memory, per second,
# at least 3 hours per version) and for every restore (per GB restored). List prices, us-east-1, USD: check the
# Lambda pricing page before relying on them.
LAMBDA_SNAPSTART_MIN_PYTHON = (3, 12)
LAMBDA_SNAPSTART_MAX_TMP_MB = 512
LAMBDA_SNAPSTART_CACHE_PER_GB_S = 0.0000015046
LAMBDA_SNAPSTART_CACHE_MIN_S = 3 * 3600
LAMBDA_SNAPSTART_RESTORE_PER_GB = 0.0001397998

# Azure Functions (Linux). The Python 3.10/3.11 worker images are Debian 11 (glibc 2.31); 3.12 is newer,
# so 2.31 is the wheel ceiling that fits every supported version.
AZURE_PYTHONS = ("3.10", "3.11", "3.12")
AZURE_OS = ("Azure Functions Linux (Debian)", (2, 31))
AZURE_FLEX_INSTANCE_MB = (512, 2_048, 4_096)
# The Functions library the app's requirements.txt pins: an app deployed without a remote build
# (func azure functionapp publish --no-build, config-zip) states exactly what it was built against.
AZURE_FUNCTIONS_PACKAGE = "azure-functions==1.26.0"
