"""Schemathesis hooks for the contract run (loaded through SCHEMATHESIS_HOOKS).

tenure decodes bodies strictly: `2.0` is not an integer (amounts are minor units, a term is
whole years), while JSON Schema counts it as one and so cannot say so. Generated bodies
send such numbers as the integers they stand for; everything else goes out as generated.
"""

from __future__ import annotations

import schemathesis


def integral_floats_as_ints(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: integral_floats_as_ints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [integral_floats_as_ints(item) for item in value]
    return value


@schemathesis.hook
def before_call(context, case, **kwargs) -> None:
    if isinstance(case.body, (dict, list, float)):
        case.body = integral_floats_as_ints(case.body)
