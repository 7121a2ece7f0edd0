"""One structured logger (powertools' JSON Logger; SCF ships stdout to CLS).

Modules log through `logging.getLogger(__name__)`: their names start with "imagesync", the powertools logger's
own name (its service), so their records reach its JSON handler by propagation.
"""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools import Logger


def _serialize(record: dict[str, Any]) -> str:
    """powertools' own serialization (compact JSON, non-ASCII characters kept), except that a lone surrogate from
    the input (a JSON "\\ud800" decodes to one) is written as its JSON escape: written raw, stdout's UTF-8 encoder
    refuses it and logging drops the whole line with a "--- Logging error ---" traceback on stderr."""
    text = json.dumps(record, default=str, separators=(",", ":"), ensure_ascii=False)
    return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode("utf-8")


logger = Logger(service="imagesync", level=os.environ.get("IMAGESYNC_LOG_LEVEL", "INFO"), json_serializer=_serialize)
