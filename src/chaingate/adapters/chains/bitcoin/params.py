"""Address and key parameters of the Bitcoin-family chains, per chain and network.

A Core fork without a built-in table (Dogecoin, ...) is described in the network's
`chain_params`; any field given there also overrides the built-in value.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from chaingate.adapters.chains.bitcoin.config import BitcoinNetworkConfig, ChainParamsConfig


@dataclass(frozen=True, slots=True)
class ChainParams:
    chain: str  # "bitcoin", "litecoin", or a configured fork
    network: str  # "mainnet", "testnet", "signet", "regtest"
    bech32_hrp: str
    p2pkh_version: int
    p2sh_version: int
    # Accepted serialization versions of account-level extended PUBLIC keys, by BIP family.
    xpub_versions: tuple[bytes, ...]  # plain BIP-32 (xpub / tpub / Ltub)
    ypub_versions: tuple[bytes, ...]  # BIP-49 nested SegWit (ypub / upub / Mtub)
    zpub_versions: tuple[bytes, ...]  # BIP-84 native SegWit (zpub / vpub)
    uri_scheme: str  # BIP-21 scheme
    coin_type: int  # BIP-44 coin type of the account path, for messages
    genesis_hash: str | None  # lower-case hex as the node prints it; None: not checked
    segwit: bool = True
    # Litecoin's MimbleWimble extension blocks: only there may a transaction carry the MWEB
    # flag (bytes we cannot hash) or a verbose output be `ismweb`; elsewhere that is a lie.
    mweb: bool = False
    # Proof of work of headers: "sha256d" (Bitcoin), "scrypt" (Litecoin, Dogecoin) or "none";
    # the target nBits encode must be no easier than pow_limit (Core's consensus.powLimit).
    pow_hash: str = "sha256d"
    pow_limit: int = 2**256 - 1
    # What `signmessage` prefixes a message with before hashing (Core's MESSAGE_MAGIC).
    message_magic: str = "Bitcoin Signed Message:\n"

    @property
    def all_public_versions(self) -> tuple[bytes, ...]:
        return self.xpub_versions + self.ypub_versions + self.zpub_versions

    def embit_network(self) -> dict[str, object]:
        """The network dict embit's address encoders read."""
        return {
            "bech32": self.bech32_hrp,
            "p2pkh": bytes([self.p2pkh_version]),
            "p2sh": bytes([self.p2sh_version]),
        }


def _v(*hex_versions: str) -> tuple[bytes, ...]:
    return tuple(bytes.fromhex(v) for v in hex_versions)


_XPUB, _YPUB, _ZPUB = _v("0488b21e"), _v("049d7cb2"), _v("04b24746")
_TPUB, _UPUB, _VPUB = _v("043587cf"), _v("044a5262"), _v("045f1cf6")


def _limit(hex_digits: str) -> int:
    return int(hex_digits.ljust(64, "f"), 16)


# consensus.powLimit of Bitcoin Core / Litecoin Core chainparams.cpp.
_BTC_LIMIT = _limit("00000000")
_SIGNET_LIMIT = int("00000377ae".ljust(64, "0"), 16)
_REGTEST_LIMIT = _limit("7f")
_LTC_LIMIT = _limit("00000")
_LITECOIN = {"mweb": True, "pow_hash": "scrypt", "message_magic": "Litecoin Signed Message:\n"}

_BITCOIN_TEST = {
    "p2pkh_version": 0x6F,
    "p2sh_version": 0xC4,
    "xpub_versions": _TPUB,
    "ypub_versions": _UPUB,
    "zpub_versions": _VPUB,
    "uri_scheme": "bitcoin",
    "coin_type": 1,
}
# Litecoin moved P2SH to version 0x32 / 0x3a ("M..." / "Q..."); Litecoin Core exports xpub,
# older Electrum-LTC and Trezor Ltub (BIP-44) / Mtub (BIP-49).
_LITECOIN_TEST = {
    "p2pkh_version": 0x6F,
    "p2sh_version": 0x3A,
    "xpub_versions": _TPUB + _v("0436f6e1"),  # tpub, ttub
    "ypub_versions": _UPUB,
    "zpub_versions": _VPUB,
    "uri_scheme": "litecoin",
    "coin_type": 1,
}

BUILT_IN: dict[tuple[str, str], ChainParams] = {
    ("bitcoin", "mainnet"): ChainParams(
        "bitcoin",
        "mainnet",
        bech32_hrp="bc",
        p2pkh_version=0x00,
        p2sh_version=0x05,
        xpub_versions=_XPUB,
        ypub_versions=_YPUB,
        zpub_versions=_ZPUB,
        uri_scheme="bitcoin",
        coin_type=0,
        genesis_hash="000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
        pow_limit=_BTC_LIMIT,
    ),
    ("bitcoin", "testnet"): ChainParams(
        "bitcoin",
        "testnet",
        bech32_hrp="tb",
        genesis_hash="000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943",
        pow_limit=_BTC_LIMIT,
        **_BITCOIN_TEST,  # type: ignore[arg-type]
    ),
    ("bitcoin", "signet"): ChainParams(
        "bitcoin",
        "signet",
        bech32_hrp="tb",
        genesis_hash="00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6",
        pow_limit=_SIGNET_LIMIT,
        **_BITCOIN_TEST,  # type: ignore[arg-type]
    ),
    ("bitcoin", "regtest"): ChainParams(
        "bitcoin",
        "regtest",
        bech32_hrp="bcrt",
        genesis_hash="0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",
        pow_limit=_REGTEST_LIMIT,
        **_BITCOIN_TEST,  # type: ignore[arg-type]
    ),
    ("litecoin", "mainnet"): ChainParams(
        "litecoin",
        "mainnet",
        bech32_hrp="ltc",
        p2pkh_version=0x30,
        p2sh_version=0x32,
        xpub_versions=_XPUB + _v("019da462"),  # xpub, Ltub
        ypub_versions=_YPUB + _v("01b26ef6"),  # ypub, Mtub
        zpub_versions=_ZPUB,
        uri_scheme="litecoin",
        coin_type=2,
        genesis_hash="12a765e31ffd4059bada1e25190f6e98c99d9714d334efa41a195a7e7e04bfe2",
        pow_limit=_LTC_LIMIT,
        **_LITECOIN,  # type: ignore[arg-type]
    ),
    ("litecoin", "testnet"): ChainParams(
        "litecoin",
        "testnet",
        bech32_hrp="tltc",
        genesis_hash="4966625a4b2851d9fdee139e56211a0d88575f59ed816ff5e6a63deb4e3e29a0",
        pow_limit=_LTC_LIMIT,
        **_LITECOIN,  # type: ignore[arg-type]
        **_LITECOIN_TEST,  # type: ignore[arg-type]
    ),
    ("litecoin", "regtest"): ChainParams(
        "litecoin",
        "regtest",
        bech32_hrp="rltc",
        genesis_hash="530827f38f93b43ed12af0b3ad25a288dc02ed74d6d7857862df51fc56c416f9",
        pow_limit=_REGTEST_LIMIT,
        **_LITECOIN,  # type: ignore[arg-type]
        **_LITECOIN_TEST,  # type: ignore[arg-type]
    ),
}


class UnknownChainParams(ValueError):
    """Neither a built-in table nor complete `chain_params` describe the network."""


def params_for(network: BitcoinNetworkConfig) -> ChainParams:
    """The parameters of a `kind = "bitcoin"` network: built-in, then `chain_params` overrides.

    Raises UnknownChainParams when a field has no value from either source.
    """
    chain, net = network.chain, network.chain_network
    base = BUILT_IN.get((chain, net))
    override = network.chain_params or ChainParamsConfig()
    if base is None:
        required = ["p2pkh_version", "p2sh_version", "xpub_versions"]
        if override.segwit is not False:
            required.append("bech32_hrp")
        missing = [name for name in required if getattr(override, name) is None]
        if missing:
            raise UnknownChainParams(
                f"{network.name}: no built-in parameters for {chain} {net}; "
                f"chain_params needs {', '.join(missing)}"
            )
        base = ChainParams(
            chain,
            net,
            bech32_hrp="",
            p2pkh_version=0,
            p2sh_version=0,
            xpub_versions=(),
            ypub_versions=(),
            zpub_versions=(),
            uri_scheme=chain,
            coin_type=0,
            genesis_hash=None,
        )
    changes: dict[str, object] = {}
    for name in ("bech32_hrp", "p2pkh_version", "p2sh_version", "uri_scheme", "coin_type"):
        value = getattr(override, name)
        if value is not None:
            changes[name] = value
    for name in ("xpub_versions", "ypub_versions", "zpub_versions"):
        versions = getattr(override, name)
        if versions is not None:
            changes[name] = _v(*versions)
    if override.genesis_hash is not None:
        changes["genesis_hash"] = override.genesis_hash
    for name in ("segwit", "mweb", "pow_hash", "message_magic"):
        value = getattr(override, name)
        if value is not None:
            changes[name] = value
    if override.pow_limit is not None:
        changes["pow_limit"] = int(override.pow_limit, 16)
    return replace(base, **changes)  # type: ignore[arg-type]
