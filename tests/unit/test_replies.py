"""The reply multiplexer (common/replies.py): what a caller waiting for a tid observes when
replies and the loss of the connection race."""

from __future__ import annotations

from common.replies import ReplyMux


async def test_a_reply_read_after_the_close_neither_crashes_the_receiver_nor_is_delivered():
    mux = ReplyMux()
    mux.expect(7)
    mux.close()  # the MDS closed the session; a reply was in the same segment
    assert mux.deliver(7, "late") is False
    assert await mux.receive(7) is None


async def test_replies_before_the_loss_are_still_handed_out_and_seen_as_pending():
    mux = ReplyMux()
    mux.expect(3)
    assert not mux.pending(3)
    assert mux.deliver(3, "unsafe") and mux.deliver(3, "safe")
    mux.close()
    assert mux.pending(3)
    assert [await mux.receive(3), await mux.receive(3), await mux.receive(3)] == \
        ["unsafe", "safe", None]
    assert not mux.pending(3) and not mux.pending(99)
