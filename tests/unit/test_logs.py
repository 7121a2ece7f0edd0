"""The JSON logger writes every line, whatever text the input brought into it."""

from __future__ import annotations

import io
import json
from typing import Any

from imagesync.platform.logs import logger


class Utf8Stdout(io.StringIO):
    """What SCF's stdout does with text: encodes it as UTF-8 (strictly), so a lone surrogate fails the write."""

    def write(self, text: str) -> int:
        text.encode("utf-8")
        return super().write(text)


def test_a_lone_surrogate_is_logged_as_its_escape_not_dropped(capsys: Any) -> None:
    stream = Utf8Stdout()
    previous = logger.registered_handler.setStream(stream)  # type: ignore[union-attr]
    try:
        logger.info("refused \ud800", extra={"msg_id": "m\udfff", "image_name": "été", "n": 1})
    finally:
        logger.registered_handler.setStream(previous)  # type: ignore[union-attr]
    assert "Logging error" not in capsys.readouterr().err
    line = json.loads(stream.getvalue().strip())
    assert (line["message"], line["msg_id"], line["image_name"], line["n"]) == ("refused \ud800", "m\udfff", "été", 1)
    assert "été" in stream.getvalue()  # non-ASCII text stays readable, as powertools writes it
