"""A daemon's monitor session keeps asking for its service tickets until they come
(common/cephx_net.py): the first request can vanish while the connection stays up, as under
`ms_blackhole_from` at the monitor (the thrasher's one-way partition) or `ms_blackhole_mon`,
on a virtual clock over an in-memory stream."""

from __future__ import annotations

import time

import trio

from common import cephx
from common import messages as m
from common.cephx_net import RETRY_RENEWAL, CephxClient
from mon.auth_monitor import AuthMonitor
from tests.inprocess.test_messenger_faults import nothing_arrives, pair


async def _session_through_a_partition(client: CephxClient, auth: AuthMonitor) -> None:
    """A monitor session whose first ticket request the monitor drops (ms_blackhole_from
    mds.a), healed a second later without the connection breaking: the request comes again
    and, once answered, no more."""
    mon, mds, config = await pair({"ms_blackhole_from": "mds.a"})
    key = cephx.new_key()
    mds.session_key = key  # as the monitor handshake leaves it

    async def receive() -> None:  # the MonClient's receive loop
        while True:
            client.on_mon_message(mds, await mds.recv())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.mon_session, mds)
        nursery.start_soon(receive)
        assert await nothing_arrives(mon, 1.0)  # the monitor dropped the first request
        config.set_runtime({})  # the partition heals; the session never broke
        with trio.fail_after(RETRY_RENEWAL + 1):
            req = await mon.recv()
        assert isinstance(req, m.AuthGetTickets) and sorted(req.services) == ["mds", "osd"]
        await mon.send(m.AuthTickets(tickets=auth.tickets(req.services, key, "mds.a", 4100,
                                                          time.time(), 3600.0)))
        await mon.send(m.AuthRotating(service="mds", sealed=auth.rotating_for("mds", key)))
        with trio.fail_after(1):
            ticket = await client._ticket("osd")
        assert ticket.service == "osd" and await client.rotating_for("mds") is not None
        assert await nothing_arrives(mon, 3 * RETRY_RENEWAL)  # answered: nothing more to ask
        nursery.cancel_scope.cancel()


async def test_a_lost_first_ticket_request_is_made_again_and_the_osd_ticket_comes(
        autojump_clock):
    await _session_through_a_partition(CephxClient("mds.a", cephx.new_key()), AuthMonitor())


async def test_a_new_session_asks_again_though_its_tickets_are_valid(autojump_clock):
    """The next monitor session (a restarted monitor) asks anew, its earlier tickets still
    valid, until it is answered: the reply brings the service's current rotating secrets."""
    client, auth = CephxClient("mds.a", cephx.new_key()), AuthMonitor()
    await _session_through_a_partition(client, auth)
    client.rotating.clear()
    await _session_through_a_partition(client, auth)
