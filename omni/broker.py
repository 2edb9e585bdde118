"""The embedded default's broker: Kombu's filesystem transport, with messages written atomically.

Kombu's `_put` creates `<time>_<uuid>.<queue>.msg` and then writes the payload into it, and `_get`
takes any such file it finds without waiting for the writer's lock. A worker that polls in that
instant reads an empty file and dies on a JSONDecodeError (celery/kombu#1551; under `make run` it
took the web server with it after a few minutes of selling). Here a message is written under a name
`_get` ignores and renamed into place when complete, so a reader sees all of it or nothing.

Selected by settings.CELERY_BROKER_TRANSPORT when CELERY_BROKER_URL is empty (the embedded default).
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: dict[str, Any], **kwargs: Any) -> None:  # type: ignore[override]  # Kombu's own signature
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = f"{final}.part"  # "<...>.<queue>.msg.part": not a message to _get
        try:
            with open(partial, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)  # atomic on one filesystem
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
