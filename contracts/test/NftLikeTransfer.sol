// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title NftLikeTransfer
/// @notice Test-only: emits an ERC-721-style Transfer whose topic0 equals ERC-20's
///         Transfer(address,address,uint256) but with the token id indexed (4 topics, no data).
/// @dev A scanner that only checks topic0 would read this as an ERC-20 payment. Ours must not.
contract NftLikeTransfer {
    event Transfer(address indexed from, address indexed to, uint256 indexed tokenId);

    function emitTransfer(address to, uint256 tokenId) external {
        emit Transfer(msg.sender, to, tokenId);
    }
}
