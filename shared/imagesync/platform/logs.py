"""One structured logger (powertools' JSON Logger; SCF ships stdout to CLS).

Modules log through `logging.getLogger(__name__)`: their names start with "imagesync", the powertools logger's
own name (its service), so their records reach its JSON handler by propagation.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger

logger = Logger(service="imagesync", level=os.environ.get("IMAGESYNC_LOG_LEVEL", "INFO"))
