"""Adapter-agnostic tests of the ChainClient port, run against a real node of each chain family.

Subclass `ChainClientContract` in a `Test...` class and implement the hooks; the subclass
usually adds an autouse fixture that stores its node on `self` (pytest makes one instance per
test, so that is safe). Every test here drives a REAL node through the hooks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection

import pytest

from chaingate.domain.chain import BlockRef, Canonical, ReorgDetected
from chaingate.ports import ChainClient


class WatchList:
    """An is_watched lookup over a fixed set of addresses that records every question."""

    def __init__(self, addresses: set[str]) -> None:
        self.addresses = addresses
        self.questions: list[set[str]] = []

    async def __call__(self, candidates: Collection[str]) -> set[str]:
        self.questions.append(set(candidates))
        return self.addresses & set(candidates)


class ChainClientContract:
    """Behaviour every ChainClient must show. Not collected itself (no `Test` prefix)."""

    native_asset: str = "ETH"  # the asset `pay` sends, as the client reports it
    payment_amount: int = 10**15  # base units `pay` sends in the tests below

    # ----- hooks --------------------------------------------------------------------------
    async def make_client(self) -> ChainClient:
        """A client on the test node; the contract closes it."""
        raise NotImplementedError

    async def pay(self, address: str, amount: int) -> str:
        """Send `amount` of `native_asset` to `address` from a wallet outside the gateway and
        return the txid once the node accepted it (it may still need `mine`)."""
        raise NotImplementedError

    async def mine(self, blocks: int) -> None:
        """Mine `blocks` blocks, including pending transactions."""
        raise NotImplementedError

    async def new_watched_address(self) -> str:
        """A fresh receive address in the client's canonical form."""
        raise NotImplementedError

    # ----- fixtures -----------------------------------------------------------------------
    @pytest.fixture
    async def client(self) -> AsyncIterator[ChainClient]:
        client = await self.make_client()
        try:
            yield client
        finally:
            await client.close()

    @staticmethod
    def watching(*addresses: str) -> WatchList:
        return WatchList(set(addresses))

    async def _tip_block(self, client: ChainClient) -> BlockRef:
        tip = await client.tip_height()
        block = await client.block_at(tip)
        assert block is not None, "the node must have the block it calls its tip"
        return block

    # ----- the contract -------------------------------------------------------------------
    async def test_tip_height_follows_mining(self, client: ChainClient) -> None:
        before = await client.tip_height()
        await self.mine(2)
        assert await client.tip_height() == before + 2

    async def test_block_at_links_to_its_parent(self, client: ChainClient) -> None:
        await self.mine(2)
        tip = await self._tip_block(client)
        parent = await client.block_at(tip.number - 1)
        assert parent is not None
        assert tip.parent_hash == parent.hash
        assert tip.hash != parent.hash
        assert tip.timestamp.tzinfo is not None
        assert tip.timestamp >= parent.timestamp

    async def test_block_at_beyond_tip_is_none(self, client: ChainClient) -> None:
        tip = await client.tip_height()
        assert await client.block_at(tip + 1) is None
        assert await client.block_at(tip + 1000) is None

    async def test_canonical_is_yes_for_its_blocks_and_unknown_beyond_its_tip(
        self, client: ChainClient
    ) -> None:
        await self.mine(2)
        tip = await self._tip_block(client)
        parent = await client.block_at(tip.number - 1)
        assert parent is not None
        assert await client.canonical(tip) is Canonical.YES
        assert await client.canonical(parent) is Canonical.YES
        # A block the node has never heard of, above its tip: a lagging node proves nothing.
        ahead = BlockRef(tip.number + 5, tip.hash[:-4] + "abcd", tip.hash, tip.timestamp)
        assert await client.canonical(ahead) is Canonical.UNKNOWN

    async def test_scan_finds_a_payment_from_an_independent_payer(
        self, client: ChainClient
    ) -> None:
        parent = await self._tip_block(client)
        address, bystander = await self.new_watched_address(), await self.new_watched_address()
        txid = await self.pay(address, self.payment_amount)
        await self.mine(1)
        tip = await client.tip_height()
        is_watched = self.watching(address)

        result = await client.scan(parent.number + 1, tip, parent, is_watched)

        assert [b.number for b in result.blocks] == list(range(parent.number + 1, tip + 1))
        assert result.blocks[0].parent_hash == parent.hash
        payments = [t for t in result.transfers if t.to_address == address]
        assert len(payments) == 1
        payment = payments[0]
        assert (payment.txid, payment.amount, payment.asset) == (
            txid,
            self.payment_amount,
            self.native_asset,
        )
        assert payment.block in result.blocks
        assert all(t.to_address != bystander for t in result.transfers)
        assert len(is_watched.questions) == 1, "one watch lookup per scan"
        assert address in is_watched.questions[0]

    async def test_scan_ignores_payments_to_unwatched_addresses(self, client: ChainClient) -> None:
        parent = await self._tip_block(client)
        await self.pay(await self.new_watched_address(), self.payment_amount)
        await self.mine(1)
        tip = await client.tip_height()
        result = await client.scan(parent.number + 1, tip, parent, self.watching())
        assert result.transfers == ()
        assert len(result.blocks) == tip - parent.number

    async def test_scan_beyond_the_tip_stops_early(self, client: ChainClient) -> None:
        await self.mine(3)
        tip = await self._tip_block(client)
        start = tip.number - 1
        parent = await client.block_at(start - 1)
        result = await client.scan(start, tip.number + 5, parent, self.watching())
        assert [b.number for b in result.blocks] == [start, tip.number]
        assert result.blocks[-1].hash == tip.hash
        empty = await client.scan(tip.number + 1, tip.number + 3, tip, self.watching())
        assert empty.blocks == ()

    async def test_scan_with_a_wrong_parent_raises_reorg_detected(
        self, client: ChainClient
    ) -> None:
        await self.mine(2)
        tip = await self._tip_block(client)
        parent = await client.block_at(tip.number - 1)
        assert parent is not None
        forged = BlockRef(
            number=parent.number,
            hash="0x" + "ab" * 32,
            parent_hash=parent.parent_hash,
            timestamp=parent.timestamp,
        )
        with pytest.raises(ReorgDetected) as caught:
            await client.scan(tip.number, tip.number, forged, self.watching())
        assert caught.value.height == parent.number

    async def test_fee_rate_is_a_positive_integer_or_none(self, client: ChainClient) -> None:
        rate = await client.fee_rate(2)
        assert rate is None or (type(rate) is int and rate > 0)

    async def test_mempool_view_holds_only_unmined_transfers_it_lists(
        self, client: ChainClient
    ) -> None:
        address = await self.new_watched_address()
        await self.pay(address, self.payment_amount)
        view = await client.mempool(self.watching(address))
        assert all(t.block is None for t in view.transfers)
        assert {t.txid for t in view.transfers} <= view.txids
        await self.mine(1)
        after = await client.mempool(self.watching(address))
        assert all(t.to_address != address for t in after.transfers)
