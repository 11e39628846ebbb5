"""EvmChainClient against a real anvil node: payments, attacks that must credit nothing, reorgs,
failover and newHeads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest

from chaingate.adapters.chains.evm import wallet_ops
from chaingate.adapters.chains.evm.artifacts import NFT_LIKE_TRANSFER
from chaingate.adapters.chains.evm.bloom import bloom_contains
from chaingate.adapters.chains.evm.client import ChainMismatch, EvmChainClient
from chaingate.adapters.chains.evm.derivation import (
    EvmAddressDeriver,
    account_xpub_from_mnemonic,
)
from chaingate.adapters.chains.evm.parse import NodeReceipt
from chaingate.adapters.chains.evm.scanner import TRANSFER_TOPIC
from chaingate.config import TokenConfig
from chaingate.domain.chain import BlockRef, Canonical, NodeUnavailable, ReorgDetected, ScanResult
from chaingate.ports import ChainClient
from tests.support.anvil import AnvilNode, find_anvil, start_anvil, stop_anvil
from tests.support.chain_contract import ChainClientContract, WatchList
from tests.support.net import free_port

pytestmark = pytest.mark.anvil

# A merchant wallet that is NOT one of anvil's funded accounts: a fresh mnemonic's account 0.
MERCHANT_MNEMONIC = "legal winner thank year wave sausage worth useful legal winner thank yellow"
MERCHANT_XPUB = account_xpub_from_mnemonic(MERCHANT_MNEMONIC)
DERIVER = EvmAddressDeriver()
ETH = 10**18


def merchant_address(index: int) -> str:
    return DERIVER.derive(MERCHANT_XPUB, index)


class TestAnvilChainClientContract(ChainClientContract):
    """The shared ChainClient contract, on anvil. The payer is anvil's own unlocked account
    (eth_sendTransaction), so nothing of ours signs the payment the scanner must find."""

    @pytest.fixture(autouse=True)
    def _on_anvil(self, anvil_isolated: AnvilNode) -> None:
        self.node = anvil_isolated
        self.next_index = 0

    async def make_client(self) -> ChainClient:
        return EvmChainClient(self.node.network())

    async def pay(self, address: str, amount: int) -> str:
        payer = self.node.accounts[9].address
        txid: str = await self.node.rpc(
            "eth_sendTransaction", {"from": payer, "to": address, "value": hex(amount)}
        )
        return txid

    async def mine(self, blocks: int) -> None:
        await self.node.mine(blocks)

    async def new_watched_address(self) -> str:
        self.next_index += 1
        return merchant_address(self.next_index)


# ----- fixtures --------------------------------------------------------------------------


@pytest.fixture
async def usdt(anvil_isolated: AnvilNode) -> TokenConfig:
    """The whitelisted 6-decimal demo USDT; the payer (accounts[1]) holds the supply."""
    return await anvil_isolated.deploy_token("USDT", 6, holder=anvil_isolated.accounts[1].address)


@pytest.fixture
async def evm(anvil_isolated: AnvilNode, usdt: TokenConfig) -> AsyncIterator[EvmChainClient]:
    client = EvmChainClient(anvil_isolated.network([usdt]))
    yield client
    await client.close()


@pytest.fixture
def payer_key(anvil_isolated: AnvilNode) -> str:
    return anvil_isolated.accounts[1].private_key


@pytest.fixture
def payer(anvil_isolated: AnvilNode) -> str:
    return anvil_isolated.accounts[1].address


async def tip_block(client: ChainClient) -> BlockRef:
    block = await client.block_at(await client.tip_height())
    assert block is not None
    return block


async def scan_since(
    client: ChainClient, parent: BlockRef, watched: Sequence[str]
) -> tuple[ScanResult, WatchList]:
    """Scan every block after `parent` up to the tip, watching `watched`."""
    is_watched = WatchList(set(watched))
    result = await client.scan(parent.number + 1, await client.tip_height(), parent, is_watched)
    return result, is_watched


async def until(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Poll `condition` (a client's state, no event to await) until true or fail."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def mined(anvil: AnvilNode, txid: str) -> NodeReceipt:
    async with anvil.rpc_client() as rpc:
        return await wallet_ops.wait_receipt(rpc, txid, timeout=10)


# ----- payments that count ---------------------------------------------------------------


async def test_native_transfer_to_a_watched_address_is_found(
    anvil_isolated: AnvilNode, evm: EvmChainClient, payer_key: str, payer: str
) -> None:
    parent = await tip_block(evm)
    to = merchant_address(1)
    async with anvil_isolated.rpc_client() as rpc:
        txid = await wallet_ops.send_native(rpc, payer_key, to, 15 * ETH // 10)
    receipt = await mined(anvil_isolated, txid)

    result, is_watched = await scan_since(evm, parent, [to])

    assert receipt.status == 1
    assert len(result.transfers) == 1
    transfer = result.transfers[0]
    assert transfer.txid == txid
    assert transfer.position == "native"
    assert transfer.to_address == to
    assert transfer.from_address == payer
    assert transfer.asset == "ETH"
    assert transfer.amount == 1_500_000_000_000_000_000
    assert transfer.token_contract is None
    assert (transfer.block.number, transfer.block.hash) == (
        receipt.block_number,
        receipt.block_hash,
    )
    assert is_watched.questions == [{to}]


async def test_token_transfer_is_found_at_its_log_index(
    anvil_isolated: AnvilNode, evm: EvmChainClient, usdt: TokenConfig, payer_key: str, payer: str
) -> None:
    to, other = merchant_address(2), merchant_address(3)
    parent = await tip_block(evm)
    # Two transfers in one block, so the one we check sits at a non-zero log index.
    await anvil_isolated.rpc("evm_setAutomine", False)
    try:
        async with anvil_isolated.rpc_client() as rpc:
            first = await wallet_ops.send_token(rpc, payer_key, usdt.contract, other, 1)
            txid = await wallet_ops.send_token(rpc, payer_key, usdt.contract, to, 12_500_000)
        await anvil_isolated.mine(1)
    finally:
        await anvil_isolated.rpc("evm_setAutomine", True)
    raw_receipt = await anvil_isolated.rpc("eth_getTransactionReceipt", txid)
    (log,) = raw_receipt["logs"]
    assert int(log["logIndex"], 16) > 0

    result, _ = await scan_since(evm, parent, [to, other])

    assert [t.txid for t in result.transfers] == [first, txid]
    assert result.transfers[0].block == result.transfers[1].block
    transfer = result.transfers[1]
    assert transfer.txid == txid
    assert transfer.position == str(int(log["logIndex"], 16))
    assert transfer.asset == "USDT"
    assert transfer.token_contract == usdt.contract
    assert transfer.amount == 12_500_000
    assert transfer.from_address == payer
    assert transfer.to_address == to


async def test_one_scan_asks_once_about_native_and_token_recipients(
    anvil_isolated: AnvilNode, evm: EvmChainClient, usdt: TokenConfig, payer_key: str
) -> None:
    parent = await tip_block(evm)
    eth_to, usdt_to, stranger = merchant_address(3), merchant_address(4), merchant_address(5)
    async with anvil_isolated.rpc_client() as rpc:
        first = await wallet_ops.send_native(rpc, payer_key, eth_to, ETH)
        second = await wallet_ops.send_token(rpc, payer_key, usdt.contract, usdt_to, 7)
        await wallet_ops.send_native(rpc, payer_key, stranger, ETH)
        await wallet_ops.wait_receipt(rpc, second)
    await anvil_isolated.mine(2)

    result, is_watched = await scan_since(evm, parent, [eth_to, usdt_to])

    assert len(is_watched.questions) == 1
    assert is_watched.questions[0] == {eth_to, usdt_to, stranger}
    assert [(t.txid, t.asset, t.amount) for t in result.transfers] == [
        (first, "ETH", ETH),
        (second, "USDT", 7),
    ]
    assert len(result.blocks) == 5


# ----- what must credit nothing ----------------------------------------------------------


async def test_a_same_symbol_token_at_another_contract_credits_nothing(
    anvil_isolated: AnvilNode, evm: EvmChainClient, payer_key: str
) -> None:
    fake = await anvil_isolated.deploy_token(
        "USDT", 6, name="Tether USD", holder=anvil_isolated.accounts[1].address
    )
    to = merchant_address(6)
    parent = await tip_block(evm)
    async with anvil_isolated.rpc_client() as rpc:
        txid = await wallet_ops.send_token(rpc, payer_key, fake.contract, to, 1_000_000)
    receipt = await mined(anvil_isolated, txid)
    raw_receipt = await anvil_isolated.rpc("eth_getTransactionReceipt", txid)

    result, _ = await scan_since(evm, parent, [to])

    assert receipt.status == 1
    assert raw_receipt["logs"][0]["topics"][0] == TRANSFER_TOPIC  # a real ERC-20 Transfer...
    assert result.transfers == ()  # ...from a contract that is not whitelisted


async def test_zero_value_transfers_are_ignored(
    anvil_isolated: AnvilNode, evm: EvmChainClient, usdt: TokenConfig, payer_key: str
) -> None:
    to = merchant_address(7)
    parent = await tip_block(evm)
    async with anvil_isolated.rpc_client() as rpc:
        native = await wallet_ops.send_native(rpc, payer_key, to, 0)
        token = await wallet_ops.send_token(rpc, payer_key, usdt.contract, to, 0)
    assert (await mined(anvil_isolated, native)).status == 1
    assert (await mined(anvil_isolated, token)).status == 1

    result, _ = await scan_since(evm, parent, [to])

    assert result.transfers == ()


async def test_a_reverted_token_transfer_credits_nothing(
    anvil_isolated: AnvilNode, evm: EvmChainClient, usdt: TokenConfig
) -> None:
    broke = anvil_isolated.accounts[2]  # holds no USDT
    to = merchant_address(8)
    parent = await tip_block(evm)
    async with anvil_isolated.rpc_client() as rpc:
        # Explicit gas skips estimation, so the failing transfer is mined with status 0.
        txid = await wallet_ops.send_token(
            rpc, broke.private_key, usdt.contract, to, 5_000_000, gas=100_000
        )
    receipt = await mined(anvil_isolated, txid)

    result, _ = await scan_since(evm, parent, [to])

    assert receipt.status == 0
    assert result.transfers == ()


async def test_a_reverted_native_transfer_credits_nothing(
    anvil_isolated: AnvilNode, evm: EvmChainClient, payer_key: str
) -> None:
    # A watched address that rejects ETH (a contract without receive()): the transaction
    # carries value to a watched address, so only the receipt's status tells it failed.
    rejecting = await anvil_isolated.deploy(NFT_LIKE_TRANSFER)
    parent = await tip_block(evm)
    async with anvil_isolated.rpc_client() as rpc:
        txid = await wallet_ops.send_transaction(
            rpc, payer_key, to=rejecting, value=ETH, gas=100_000
        )
    receipt = await mined(anvil_isolated, txid)
    block = await anvil_isolated.rpc("eth_getBlockByNumber", hex(receipt.block_number), True)

    result, is_watched = await scan_since(evm, parent, [rejecting])

    assert receipt.status == 0
    assert int(block["transactions"][0]["value"], 16) == ETH
    assert is_watched.questions == [{rejecting}]
    assert result.transfers == ()


async def test_a_four_topic_nft_like_transfer_credits_nothing(
    anvil_isolated: AnvilNode, usdt: TokenConfig, payer_key: str
) -> None:
    nft = await anvil_isolated.deploy(NFT_LIKE_TRANSFER)
    # Even whitelisted as a token, its 4-topic Transfer (same topic0 as ERC-20) is no payment.
    listed = TokenConfig(symbol="NFTX", contract=nft, decimals=0)
    client = EvmChainClient(anvil_isolated.network([usdt, listed]))
    to = merchant_address(9)
    try:
        parent = await tip_block(client)
        async with anvil_isolated.rpc_client() as rpc:
            data = wallet_ops.encode_call(
                "emitTransfer(address,uint256)", ["address", "uint256"], [to, 1_000_000]
            )
            txid = await wallet_ops.send_transaction(rpc, payer_key, to=nft, data=data)
        receipt = await mined(anvil_isolated, txid)
        raw_receipt = await anvil_isolated.rpc("eth_getTransactionReceipt", txid)

        result, _ = await scan_since(client, parent, [to])
    finally:
        await client.close()

    assert receipt.status == 1
    (log,) = raw_receipt["logs"]
    assert log["topics"][0] == TRANSFER_TOPIC
    assert len(log["topics"]) == 4
    assert result.transfers == ()


# ----- blooms, reorgs, ranges ------------------------------------------------------------


async def test_block_blooms_tell_which_blocks_hold_token_transfers(
    anvil_isolated: AnvilNode, usdt: TokenConfig, payer_key: str
) -> None:
    async with anvil_isolated.rpc_client() as rpc:
        txid = await wallet_ops.send_token(rpc, payer_key, usdt.contract, merchant_address(1), 1)
        receipt = await wallet_ops.wait_receipt(rpc, txid)
    await anvil_isolated.mine(1)
    with_log = await anvil_isolated.rpc("eth_getBlockByNumber", hex(receipt.block_number), False)
    empty = await anvil_isolated.rpc("eth_getBlockByNumber", "latest", False)
    contract = bytes.fromhex(usdt.contract[2:])
    topic = bytes.fromhex(TRANSFER_TOPIC[2:])

    bloom = bytes.fromhex(with_log["logsBloom"][2:])
    assert bloom_contains(bloom, contract)
    assert bloom_contains(bloom, topic)
    empty_bloom = bytes.fromhex(empty["logsBloom"][2:])
    assert not bloom_contains(empty_bloom, contract)
    assert not bloom_contains(empty_bloom, topic)


async def test_after_a_reorg_the_stored_block_is_no_longer_canonical(
    anvil_isolated: AnvilNode, evm: EvmChainClient, payer_key: str
) -> None:
    fork = await tip_block(evm)
    to = merchant_address(10)
    async with anvil_isolated.rpc_client() as rpc:
        txid = await wallet_ops.send_native(rpc, payer_key, to, ETH)
        await wallet_ops.wait_receipt(rpc, txid)
    await anvil_isolated.mine(1)
    stored = await tip_block(evm)
    before, _ = await scan_since(evm, fork, [to])
    assert [t.txid for t in before.transfers] == [txid]

    await anvil_isolated.reorg(2)

    now = await evm.block_at(stored.number)
    assert now is not None
    assert now.hash != stored.hash
    assert await evm.canonical(stored) is Canonical.NO
    assert await evm.canonical(now) is Canonical.YES
    await anvil_isolated.mine(1)
    with pytest.raises(ReorgDetected):
        await evm.scan(stored.number + 1, stored.number + 1, stored, WatchList({to}))
    after, _ = await scan_since(evm, fork, [to])
    assert after.blocks[0].parent_hash == fork.hash
    assert after.transfers == ()  # the payment went with the orphaned block


async def test_a_shorter_chain_proves_nothing_until_it_holds_another_block_there(
    anvil_isolated: AnvilNode, evm: EvmChainClient
) -> None:
    snapshot = await anvil_isolated.snapshot()
    await anvil_isolated.mine(3)
    ours = await tip_block(evm)
    below = await evm.block_at(ours.number - 2)
    assert below is not None

    await anvil_isolated.revert(snapshot)  # shorter: the node lost our newest three blocks
    assert await evm.tip_height() == ours.number - 3
    # Lagging and shortened look alike from here: an EVM node keeps no verdict on a hash.
    assert await evm.canonical(ours) is Canonical.UNKNOWN
    assert await evm.canonical(below) is Canonical.UNKNOWN
    # The shorter chain grows: another block (stamped apart from ours) at a height we had.
    await anvil_isolated.rpc("evm_mine", int(below.timestamp.timestamp()) + 7)
    assert await evm.canonical(below) is Canonical.NO
    assert await evm.canonical(ours) is Canonical.UNKNOWN


async def test_scan_rejects_a_parent_that_is_not_the_block_before_start(
    evm: EvmChainClient,
) -> None:
    tip = await tip_block(evm)
    with pytest.raises(ValueError, match="parent"):
        await evm.scan(tip.number + 2, tip.number + 3, tip, WatchList(set()))


# ----- node handling ---------------------------------------------------------------------


async def test_verify_chain_accepts_the_right_chain_and_names_the_wrong_one(
    anvil_isolated: AnvilNode,
) -> None:
    right = EvmChainClient(anvil_isolated.network())
    wrong = EvmChainClient(anvil_isolated.network(chain_id=1))
    try:
        await right.verify_chain()
        with pytest.raises(ChainMismatch, match="chain id 31337"):
            await wrong.verify_chain()
    finally:
        await right.close()
        await wrong.close()


async def test_failover_from_a_dead_node_to_a_live_one(
    anvil_isolated: AnvilNode, usdt: TokenConfig, payer_key: str
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    to = merchant_address(11)
    async with anvil_isolated.rpc_client(dead) as rpc:
        client = EvmChainClient(anvil_isolated.network([usdt], rpc_urls=[dead]), rpc)
        parent = await tip_block(client)
        assert not rpc.is_healthy(rpc.endpoints[0])
        txid = await wallet_ops.send_token(rpc, payer_key, usdt.contract, to, 3)
        await wallet_ops.wait_receipt(rpc, txid)

        result, _ = await scan_since(client, parent, [to])
        await client.close()  # does not close the rpc it was given

        assert [t.txid for t in result.transfers] == [txid]
        assert rpc.endpoints[0].url == dead
        assert await rpc.call("eth_chainId") == hex(anvil_isolated.chain_id)


async def test_all_nodes_dead_raises_node_unavailable(anvil_isolated: AnvilNode) -> None:
    dead = [f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"]
    client = EvmChainClient(anvil_isolated.network(rpc_urls=dead))
    try:
        with pytest.raises(NodeUnavailable, match="no node answered"):
            await client.tip_height()
        with pytest.raises(NodeUnavailable):
            await client.scan(1, 2, None, WatchList(set()))
    finally:
        await client.close()


async def test_wait_for_new_head_wakes_on_a_mined_block(anvil_isolated: AnvilNode) -> None:
    client = EvmChainClient(anvil_isolated.network())
    try:
        await client.wait_for_new_head(0.01)  # starts the subscription
        await until(lambda: client.new_heads_connected)

        started = time.monotonic()
        waiter = asyncio.create_task(client.wait_for_new_head(30))
        await asyncio.sleep(0.05)
        assert not waiter.done()
        await anvil_isolated.mine(1)
        await asyncio.wait_for(waiter, timeout=5)
        assert time.monotonic() - started < 5
    finally:
        await client.close()


async def test_wait_for_new_head_without_websocket_sleeps_the_timeout(
    anvil_isolated: AnvilNode,
) -> None:
    unreachable_ws = f"ws://127.0.0.1:{free_port()}"
    for network in (
        anvil_isolated.network(ws_url=None),
        anvil_isolated.network(ws_url=unreachable_ws),
    ):
        client = EvmChainClient(network)
        try:
            started = time.monotonic()
            waiter = asyncio.create_task(client.wait_for_new_head(0.4))
            await anvil_isolated.mine(1)
            await waiter
            assert time.monotonic() - started >= 0.35
            assert not client.new_heads_connected
        finally:
            await client.close()


async def test_the_new_heads_subscription_reconnects_after_the_node_restarts(
    anvil: AnvilNode, tmp_path: Path
) -> None:
    binary = find_anvil()
    assert binary is not None
    process, port = start_anvil(binary, tmp_path)
    url = f"127.0.0.1:{port}"
    client = EvmChainClient(anvil.network(rpc_urls=[f"http://{url}"], ws_url=f"ws://{url}"))
    try:
        await client.wait_for_new_head(0.01)
        await until(lambda: client.new_heads_connected)
        stop_anvil(process)
        await until(lambda: not client.new_heads_connected)

        process, _ = start_anvil(binary, tmp_path, port=port)
        await until(lambda: client.new_heads_connected, within=10)
        waiter = asyncio.create_task(client.wait_for_new_head(30))
        await asyncio.sleep(0.05)
        assert not waiter.done()
        await client.rpc.call("anvil_mine", ["0x1"])
        await asyncio.wait_for(waiter, timeout=5)
    finally:
        await client.close()
        stop_anvil(process)
