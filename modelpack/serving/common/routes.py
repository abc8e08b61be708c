"""One HTTP request to a generated handler: which protocol it speaks, its body decoded, its answer encoded.

Shipped inside every generated handler (the Lambda handler and the Azure app both call `handle`); depends
only on numpy, the standard library and the other serving modules. Decoders for binary tensors, images and
the Open Inference Protocol are imported on the first request that needs them, so cold start stays as it was.

  POST /<route> (config "route", default predict; a Function URL's root too)
                                  TensorFlow Serving predict: JSON, application/x-npy, application/x-npz
                                  (and images when the package was built for them: image/jpeg, image/png,
                                  multipart/form-data uploads); answered as JSON unless Accept asks for
                                  application/x-npy (one output) or application/x-npz
  POST .../v2/models/<name>/infer Open Inference Protocol, JSON or with the binary tensor extension
  GET  .../v2/health/ready|live   readiness (loads the model) and liveness
  GET  .../v2/models/<name>[/ready]  model metadata, model readiness

Paths are matched segment by segment, so a stage or base path in front of them (/prod/predict, /v2/predict for
an API stage named v2) changes nothing. The Open Inference Protocol is recognised by its own shape (a `v2`
segment followed by `health`, `models` or nothing), never by a substring, so `route: ml/v2/predict` predicts.
"""

from __future__ import annotations

import serving
from errors import RequestError, decoding
from replies import JSON_TYPES, Reply, json_reply, media_type

PREDICT, OIP = "predict", "oip"
OIP_HEADS = ("health", "models")
FORM = "multipart/form-data"


def route_of(config: dict) -> str:
    """The predict route this package was built with (recipe `route`), without slashes."""
    azure = config.get("azure") if isinstance(config.get("azure"), dict) else {}
    return str(config.get("route") or azure.get("route") or "predict").strip("/")


def target(config: dict, path: str) -> tuple[str | None, str]:
    """(PREDICT, ""), (OIP, "/v2/...") or (None, "") for a request path."""
    segments = [s for s in (path or "/").split("/") if s]
    for i, segment in enumerate(segments):
        if segment == "v2" and (i + 1 == len(segments) or segments[i + 1] in OIP_HEADS):
            return OIP, "/" + "/".join(segments[i:])
    route = route_of(config).split("/")
    if not segments or segments[-len(route):] == route:
        return PREDICT, ""
    return None, ""


def handle(holder, method: str, path: str, headers: dict, body, limit: int) -> Reply:
    """Answer one request; `headers` has lower-case names and string values, `body` is str or bytes.
    A RequestError or ServeError raised here is the caller's to turn into a JSON error."""
    method = (method or "POST").upper()
    config = holder.config
    kind, oip_path = target(config, path)
    if kind == OIP:
        import oip  # the protocol's code loads with its first request

        return oip.route(holder, method, oip_path, headers, body, limit)
    route = route_of(config)
    if kind is None:
        raise RequestError(f"no route {str(path)[:80]!r} here: POST requests to /{route}; the Open Inference "
                           "Protocol is under /v2/", status=404)
    if method != "POST":
        return json_reply(405, {"error": f"{method[:10]} is not allowed on /{route}: POST a request body"},
                          headers={"Allow": "POST"})
    if len(body) > limit:
        raise RequestError(f"request body is {len(body)} bytes; the limit is {limit}", status=413)
    max_batch = int(config.get("max_batch", 1024))
    with decoding("the request body"):
        request, arrays = decode(holder, headers, body, limit, max_batch)
    accept = media_type(headers.get("accept"))
    if accept in ("application/x-npy", "application/x-npz"):
        import tensors

        if arrays is None:
            arrays = serving.request_arrays(holder, request)
        outputs, infer_ms = serving.infer(holder, arrays)
        names = [o["name"] for o in config["outputs"]]
        if accept == tensors.NPY:
            if len(outputs) != 1:
                raise RequestError(f"this model has {len(outputs)} outputs {names}; ask for application/x-npz "
                                   "to get them all", status=406)
            return Reply(200, tensors.npy_bytes(outputs[0]), tensors.NPY, infer_ms=infer_ms)
        return Reply(200, tensors.npz_bytes(dict(zip(names, outputs))), tensors.NPZ, infer_ms=infer_ms)
    if arrays is None:
        answer, infer_ms, cache = serving.predict(holder, request)
    else:
        answer, infer_ms, cache = serving.predict_arrays(holder, arrays)
    return Reply(200, serving.dumps(answer), infer_ms=infer_ms, cache=cache)


def decode(holder, headers: dict, body, limit: int, max_batch: int) -> tuple[dict | None, dict | None]:
    """(request, None) for a TF Serving JSON request, (None, arrays) for every other body."""
    kind = media_type(headers.get("content-type"))
    config = holder.config
    if kind in JSON_TYPES:
        request = serving.parse_body(body, limit, holder.bounds)
        if config.get("image") and has_b64(request):
            import images

            encoded = images.b64_images(request)
            if encoded is not None:
                return None, images.arrays(config, encoded)
        return request, None
    return None, decode_binary(holder, kind, headers, body, max_batch)


def has_b64(request: dict) -> bool:
    """Whether a parsed TF Serving request holds {"b64": ...} instances (wherever they are in the body)."""
    rows = request.get("instances", request.get("inputs"))
    first = rows[0] if isinstance(rows, list) and rows else rows
    return isinstance(first, dict) and "b64" in first


def decode_binary(holder, kind: str, headers: dict, body, max_batch: int) -> dict:
    """Checked input arrays from a binary request body of media type `kind`."""
    has_images = bool(holder.config.get("image"))
    image = has_images and (kind.startswith("image/") or kind == FORM)
    if kind not in ("application/x-npy", "application/x-npz") and not image:
        formats = "application/json, application/x-npy or application/x-npz"
        if has_images:
            formats += ", image/jpeg, image/png or multipart/form-data"
        raise RequestError(f"send the request as {formats}", status=415)
    if isinstance(body, str):
        raise RequestError(f"a {kind} body must arrive as bytes (base64-encoded in a Lambda event)")
    inputs = holder.config["inputs"]
    if not image:
        import tensors

        if kind == tensors.NPZ:
            return tensors.read_npz(body, inputs, max_batch)
        if len(inputs) != 1:
            names = [i["name"] for i in inputs]
            raise RequestError(f"this model has {len(inputs)} inputs {names}; send them as application/x-npz",
                               status=415)
        return {inputs[0]["name"]: tensors.read_npy(body, inputs[0], max_batch)}
    import images

    if kind == FORM:
        return images.arrays(holder.config, images.form_files(headers.get("content-type", ""), body, max_batch))
    return images.arrays(holder.config, [body], kind)
