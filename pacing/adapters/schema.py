"""The published JSON Schemas, generated from the models that validate guides and profiles.

Regenerate with `python -m pacing.adapters.schema`; a test keeps the files in sync.
"""

from __future__ import annotations

import json
from pathlib import Path

from pacing.core.guide import Guide
from pacing.core.lea import Lea

ROOT = Path(__file__).resolve().parent.parent.parent
FILES: dict[str, type[Guide] | type[Lea]] = {
    "guides/guide.schema.json": Guide,
    "examples/profile.schema.json": Lea,
}


def render(model: type[Guide] | type[Lea]) -> str:
    schema = model.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    for name, model in FILES.items():
        (ROOT / name).write_text(render(model), encoding="utf-8")
        print("wrote", name)
