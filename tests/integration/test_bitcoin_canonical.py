"""Is our block still in the node's best chain? BitcoinChainClient.canonical on real litecoind
regtest nodes: proof from a node whose chain got shorter, from a node that preferred a heavier
branch, and none from a node that lags (never saw the block, or holds only its header)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chaingate.adapters.chains.bitcoin.client import BitcoinChainClient
from chaingate.domain.chain import BlockRef, Canonical
from tests.support.litecoind import LitecoindNode

pytestmark = pytest.mark.litecoind


@pytest.fixture
async def client(litecoind_isolated: LitecoindNode) -> AsyncIterator[BitcoinChainClient]:
    chain = BitcoinChainClient(litecoind_isolated.network())
    yield chain
    await chain.close()


async def block(client: BitcoinChainClient, height: int) -> BlockRef:
    found = await client.block_at(height)
    assert found is not None
    return found


async def copy_blocks(source: LitecoindNode, target: LitecoindNode, hashes: list[str]) -> None:
    for block_hash in hashes:
        answer = await target.rpc("submitblock", await source.rpc("getblock", block_hash, 0))
        assert answer in (None, "inconclusive")  # inconclusive: stored on a side branch


async def test_a_block_invalidated_off_a_now_shorter_chain_is_not_canonical(
    litecoind_isolated: LitecoindNode, client: BitcoinChainClient
) -> None:
    node = litecoind_isolated
    await node.mine(2)
    ours = await block(client, await node.tip())
    parent = await block(client, ours.number - 1)
    assert await client.canonical(ours) is Canonical.YES

    await node.rpc("invalidateblock", ours.hash)
    assert await node.tip() == ours.number - 1  # shorter than where we stand
    assert await client.canonical(ours) is Canonical.NO
    assert await client.canonical(parent) is Canonical.YES
    await node.mine(3)  # the new branch outgrows the invalid one: still no
    assert await client.canonical(ours) is Canonical.NO


async def test_a_block_on_a_branch_the_node_outweighed_is_not_canonical(
    litecoind_isolated: LitecoindNode,
    litecoind_backup: LitecoindNode,
    client: BitcoinChainClient,
) -> None:
    node, other_miner = litecoind_isolated, litecoind_backup
    assert await node.tip() == await other_miner.tip()  # one funded chain, two nodes, no P2P
    [ours] = await node.mine(1)
    # A competing miner's heavier branch (its reward elsewhere, so its blocks differ from ours:
    # the two nodes hold copies of the same wallets).
    branch = await other_miner.mine(2, await other_miner.new_address("payer"))
    await copy_blocks(other_miner, node, branch)
    assert await node.rpc("getbestblockhash") == branch[-1]
    tips = {t["hash"]: t["status"] for t in await node.rpc("getchaintips")}
    assert tips[ours] == "valid-fork"  # nothing invalid: the proof is the chain work alone
    mined = BlockRef(await node.tip() - 1, ours, "", (await block(client, 0)).timestamp)
    assert await client.canonical(mined) is Canonical.NO


async def test_a_lagging_node_cannot_tell(
    litecoind_isolated: LitecoindNode, litecoind_backup: LitecoindNode
) -> None:
    node, lagging = litecoind_isolated, litecoind_backup
    await node.mine(2)
    behind = BitcoinChainClient(lagging.network())
    ahead = BitcoinChainClient(node.network())
    try:
        first, ours = await block(ahead, await node.tip() - 1), await block(ahead, await node.tip())
        assert await behind.canonical(ours) is Canonical.UNKNOWN  # never heard of it
        await copy_blocks(node, lagging, [first.hash])
        header = await node.rpc("getblockheader", ours.hash, False)
        assert await lagging.rpc("submitheader", header) is None
        known = await lagging.rpc("getblockheader", ours.hash)
        assert known["confirmations"] == -1  # what a node downloading the block answers
        assert await behind.canonical(ours) is Canonical.UNKNOWN
        await copy_blocks(node, lagging, [ours.hash])
        assert await behind.canonical(ours) is Canonical.YES
    finally:
        await behind.close()
        await ahead.close()
