"""A flow's invocation, fetched by a client, works with no store active (issue 12).

The client holds no ``with store:`` block: ``Flow.invocation()`` returns an
invocation that remembers the flow's store (S3 here, through moto), so summaries,
children, rewind and replay work as they do inside a block, and a missing store
is never answered with advice to use ``InMemoryStore``.
"""

from __future__ import annotations

import pytest

import enact
import enact.worker
from enact.store import active_store
from tests.worker import flows


def test_invocation_of_a_finished_flow_works_without_a_store(workers):
    workers.start("outside")
    flow = enact.worker.submit(flows.roll_sum, 3)
    assert flow.wait(30) == "done"
    assert active_store() is None

    invocation = flow.invocation()
    summary = enact.invocation_summary(invocation).splitlines()
    children = invocation.get_children()
    assert summary[0] == f"->roll_sum(3) = {flow.result()}"
    assert [line.strip() for line in summary[1:]] == [
        f"->roll_die(6) = {child.get_output()}" for child in children
    ]
    assert len(children) == 3 and invocation.get_output() == flow.result()

    rewound = invocation.rewind(2)
    assert [c.get_output() for c in rewound.get_children()] == [children[0].get_output()]
    assert enact.invocation_summary(rewound).splitlines()[0] == "->roll_sum(3) incomplete"
    replayed = rewound.replay()  # runs here, in the client, against the flow's store
    assert replayed.get_child(0) == children[0]  # the first roll was reused
    assert len(replayed.get_children()) == 3
    assert replayed.get_output() == sum(c.get_output() for c in replayed.get_children())
    assert active_store() is None


def test_invocation_of_a_waiting_flow_works_without_a_store(workers):
    workers.start("waiting")
    flow = enact.worker.submit(flows.roll_dice_user_flow)
    assert flow.wait(30) == "waiting"
    invocation = flow.invocation()
    [(path, request)] = invocation.pending_input_requests()
    assert path == (0,)
    assert request.for_value() == "Total number of rolls?"
    assert isinstance(invocation.get_raised(), enact.InputRequest)
    assert enact.invocation_summary(invocation).splitlines()[0] == (
        "->roll_dice_user_flow() raised InputRequest: input of type int requested for "
        "'Total number of rolls?'"
    )
    enact.worker.answer(enact.worker.pending_inputs(flow.id)[0].id, 0)
    assert flow.wait(30) == "done"


def test_no_store_error_does_not_advise_an_in_memory_store():
    detached = enact.Invocation(enact.Ref("ab" * 32), enact.Ref("cd" * 32))
    for action in (detached.get_children, lambda: enact.invocation_summary(detached)):
        with pytest.raises(enact.NoActiveStore) as info:
            action()
        assert "InMemoryStore" not in str(info.value)
        assert "with store:" in str(info.value)
    with pytest.raises(enact.NoActiveStore) as info:
        enact.commit(1)
    assert "InMemoryStore" not in str(info.value)
