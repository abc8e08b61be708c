"""Which array feeds which model input: data.inputs lists arrays in the order of the model's inputs, and a model
built from a dict of inputs takes them sorted by key, which is easy to get wrong. Arrays named like the model's
inputs but listed in another order are refused; inputs only shape and dtype cannot tell apart get a warning."""

from __future__ import annotations

from modelpack.errors import InputError


def expected(inputs: list) -> str:
    """The model's inputs in the order data.inputs must follow: "cat [batch, 1] int32, num [batch, 4] float32"."""
    from modelpack.inputs.shapes import text

    listed = ", ".join(f"{t.name} {text(list(t.shape))} {t.dtype}" for t in inputs)
    if len(inputs) < 2:
        return listed
    return f"{listed} (a model built from a dict of inputs takes them sorted by key)"


def check(names: list[str], inputs: list, field: str, origin: str) -> list[str]:
    """Refuse arrays named after the model's inputs but listed in another order; return a warning when inputs of
    one shape and dtype are fed by arrays whose names say nothing about which is which."""
    model_names = [t.name for t in inputs]
    if len(names) != len(inputs):
        raise InputError(f"{origin}: {field} names {len(names)} array(s) but the model has {len(inputs)} input(s). "
                         f"List one array per model input, in this order: {expected(inputs)}.")
    if len(inputs) < 2:
        return []
    misplaced = [(n, i) for i, n in enumerate(names) if n in model_names and model_names.index(n) != i]
    if misplaced:
        name, at = misplaced[0]
        raise InputError(
            f"{origin}: {field} lists {', '.join(names)}, so array '{name}' feeds input {at + 1} "
            f"('{model_names[at]}'), but the model's input '{name}' is input {model_names.index(name) + 1}. "
            f"List the arrays in the model's order: {expected(inputs)}.")
    alike: dict[tuple, list[int]] = {}
    for i, t in enumerate(inputs):
        alike.setdefault((tuple(t.shape[1:]), t.dtype), []).append(i)
    for group in alike.values():
        unnamed = [i for i in group if names[i] != model_names[i]]
        if len(group) > 1 and unnamed:
            which = " and ".join(f"'{model_names[i]}'" for i in group)
            fed = ", ".join(f"'{names[i]}' -> '{model_names[i]}'" for i in group)
            return [f"inputs {which} have the same shape and dtype, so nothing shows whether {field} feeds them the "
                    f"right arrays ({fed}); name the arrays after the inputs and modelpack checks the order"]
    return []
