"""The embedded broker (omni.broker) under a reader that polls while messages are being written."""

from __future__ import annotations

import threading
from queue import Empty

from kombu import Connection
from kombu.exceptions import ChannelError

from omni.broker import Transport

MESSAGES = 30
RACES = 8  # Kombu's own transport failed about one race in three here
PAYLOAD = {"body": "x" * 2_000_000}  # large enough that writing one takes a while


def _channel(transport, folder):
    for name in ("out", "processed", "control"):
        (folder / name).mkdir(exist_ok=True)
    options = {
        "data_folder_in": str(folder / "out"),
        "data_folder_out": str(folder / "out"),
        "data_folder_processed": str(folder / "processed"),
        "control_folder": str(folder / "control"),
    }
    return Connection("filesystem://localhost//", transport=transport, transport_options=options).channel()


def _race(transport, folder) -> tuple[int, list[BaseException]]:
    """A writer puts MESSAGES large messages while a reader polls without pause; (read, errors)."""
    writer_channel, reader_channel = _channel(transport, folder), _channel(transport, folder)
    done = threading.Event()

    def write():
        for number in range(MESSAGES):
            writer_channel._put("celery", {**PAYLOAD, "number": number})
        done.set()

    read, errors = [], []
    writer = threading.Thread(target=write)
    writer.start()
    while len(read) < MESSAGES and not errors:
        try:
            read.append(reader_channel._get("celery")["number"])
        except Empty:
            if done.is_set() and not list((folder / "out").glob("*.msg")):
                break
        except (ValueError, ChannelError) as error:  # JSONDecodeError is a ValueError
            errors.append(error)
    writer.join()
    return len(read), errors


def test_a_polling_worker_reads_every_message_whole(tmp_path):
    for race in range(RACES):
        folder = tmp_path / str(race)
        folder.mkdir()
        count, errors = _race(Transport, folder)

        assert errors == []
        assert count == MESSAGES
        assert not list((folder / "out").iterdir())  # nothing left behind, no partial files
