"""One HTTP request to a generated handler: which protocol it speaks, its body decoded, its answer encoded.

Shipped inside every generated handler (the Lambda handler and the Azure app both call `handle`); depends
only on numpy, the standard library and the other serving modules. Decoders for binary tensors, images and
the Open Inference Protocol are imported on the first request that needs them, so cold start stays as it was.

  POST any path but /v2/...       TensorFlow Serving predict: JSON, application/x-npy, application/x-npz
                                  (and images when the package was built for them); answered as JSON unless
                                  Accept asks for application/x-npy (one output) or application/x-npz
  POST .../v2/models/<name>/infer Open Inference Protocol, JSON or with the binary tensor extension
  GET  .../v2/health/ready|live   readiness (loads the model) and liveness
  GET  .../v2/models/<name>[/ready]  model metadata, model readiness
"""

from __future__ import annotations

import serving
from errors import RequestError
from replies import JSON_TYPES, Reply, media_type


def handle(holder, method: str, path: str, headers: dict, body, limit: int) -> Reply:
    """Answer one request; `headers` has lower-case names and string values, `body` is str or bytes.
    A RequestError or ServeError raised here is the caller's to turn into a JSON error."""
    method = (method or "POST").upper()
    at = path.find("/v2/")
    if at >= 0 or path.endswith("/v2"):
        import oip  # the protocol's code loads with its first request

        return oip.route(holder, method, path[at:] if at >= 0 else "/v2", headers, body, limit)
    if len(body) > limit:
        raise RequestError(f"request body is {len(body)} bytes; the limit is {limit}", status=413)
    kind = media_type(headers.get("content-type"))
    config = holder.config
    max_batch = int(config.get("max_batch", 1024))
    if kind in JSON_TYPES:
        request = serving.parse_body(body, limit, holder.bounds)
        arrays = None
        if config.get("image") and '"b64"' in (body if isinstance(body, str) else body[:4096].decode("latin-1")):
            import images

            encoded = images.b64_images(request)
            if encoded is not None:
                arrays, request = images.arrays(config, encoded), None
    else:
        arrays = decode_binary(holder, kind, body, max_batch)
        request = None
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


def decode_binary(holder, kind: str, body, max_batch: int) -> dict:
    """Checked input arrays from a binary request body of media type `kind`."""
    image = bool(holder.config.get("image")) and kind.startswith("image/")
    if kind not in ("application/x-npy", "application/x-npz") and not image:
        formats = "application/json, application/x-npy or application/x-npz"
        if holder.config.get("image"):
            formats += ", image/jpeg or image/png"
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

    return images.arrays(holder.config, [body], kind)
