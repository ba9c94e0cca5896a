"""The types of JSON values, for what tpt reads from and writes to its JSON files.

`JSONValue` is what `json.loads` can return (recursively); `JSONObject` is a JSON object. They are
stricter than a dict of Any: a reader narrows a value (`isinstance`) before using it as a number,
a list or an object. Where the keys are known, a TypedDict or a dataclass says more (formats/summaries.py).
"""

from __future__ import annotations

JSONScalar = str | int | float | bool | None
JSONValue = JSONScalar | list["JSONValue"] | dict[str, "JSONValue"]
JSONObject = dict[str, JSONValue]
