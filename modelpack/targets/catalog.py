"""Every build target, one registry line each."""

from __future__ import annotations

from modelpack.targets import TARGETS
from modelpack.targets.azure_functions import AzureFunctionsTarget
from modelpack.targets.images import AzureImageTarget, LambdaImageTarget
from modelpack.targets.lambda_function import LambdaFunctionTarget
from modelpack.targets.lambda_layer import LambdaLayerTarget
from modelpack.targets.lambda_split import LambdaSplitTarget

TARGETS.register(LambdaLayerTarget)
TARGETS.register(LambdaFunctionTarget)
TARGETS.register(LambdaSplitTarget)
TARGETS.register(AzureFunctionsTarget)
TARGETS.register(LambdaImageTarget)
TARGETS.register(AzureImageTarget)
