"""Task failures cross process boundaries (the media pool's checks raise them in another process): they must come
back whole, or the pool's result thread fails to unpickle them and the whole pool is marked broken."""

from __future__ import annotations

import pickle

from reelgate.errors import MediaError, TaskFailure


def test_a_media_error_survives_pickling_with_its_code_message_and_param() -> None:
    back = pickle.loads(pickle.dumps(MediaError("image_processing_error", "x is too small", param="refer_images[0]")))
    assert isinstance(back, MediaError)
    assert (back.code, back.message, back.param) == ("image_processing_error", "x is too small", "refer_images[0]")


def test_a_task_failure_survives_pickling() -> None:
    back = pickle.loads(pickle.dumps(TaskFailure("generation_timeout", "took too long")))
    assert (type(back), back.code, back.message, str(back)) == (TaskFailure, "generation_timeout", "took too long",
                                                                "took too long")  # fmt: skip
