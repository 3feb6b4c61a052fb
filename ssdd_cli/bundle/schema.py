"""The manifest's JSON Schema, generated from the pydantic model (`make schema` writes it)."""

from __future__ import annotations

import json
import sys
from typing import Any

from ssdd_cli.bundle.manifest import FORMAT_VERSION, Manifest


def manifest_json_schema() -> dict[str, Any]:
    schema = Manifest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://ssdd.dev/formats/ssdd-v{FORMAT_VERSION}.schema.json"
    return schema


def render() -> str:
    return json.dumps(manifest_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
