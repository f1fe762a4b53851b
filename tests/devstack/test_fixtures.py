"""The service fixtures really are the services: a workflow runs, a block is mined, a message
crosses Redis."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.worker import Worker


@activity.defn
def double(value: int) -> int:
    return value * 2


@workflow.defn(sandboxed=False)
class DoubleWorkflow:
    @workflow.run
    async def run(self, value: int) -> int:
        return await workflow.execute_activity(
            double, value, start_to_close_timeout=timedelta(seconds=10)
        )


async def test_temporal_dev_server_runs_a_workflow(temporal_env):
    from concurrent.futures import ThreadPoolExecutor

    queue = f"fixture-{uuid.uuid4().hex}"
    with ThreadPoolExecutor(max_workers=2) as pool:
        async with Worker(
            temporal_env.client,
            task_queue=queue,
            workflows=[DoubleWorkflow],
            activities=[double],
            activity_executor=pool,
        ):
            result = await temporal_env.client.execute_workflow(
                DoubleWorkflow.run, 21, id=f"double-{uuid.uuid4().hex}", task_queue=queue
            )
    assert result == 42


def test_anvil_mines_a_transfer(w3):
    sender, receiver = w3.eth.accounts[:2]
    before = w3.eth.get_balance(receiver)
    tx = w3.eth.send_transaction({"from": sender, "to": receiver, "value": 12345})
    receipt = w3.eth.wait_for_transaction_receipt(tx, timeout=10)
    assert receipt.status == 1
    assert w3.eth.get_balance(receiver) - before == 12345


async def test_channel_layer_round_trips_through_redis(channel_layer):
    name = await channel_layer.new_channel()
    await channel_layer.send(name, {"type": "probe", "n": 7})
    assert await channel_layer.receive(name) == {"type": "probe", "n": 7}
