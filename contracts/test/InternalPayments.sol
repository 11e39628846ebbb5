// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ConstructorPayer
/// @notice Test-only: pays `to` from inside its own constructor, so the money moves in an
///         internal CALL of a contract-creation transaction (no `to`, no log).
contract ConstructorPayer {
    constructor(address payable to) payable {
        (bool ok, ) = to.call{value: msg.value}("");
        require(ok, "payment failed");
    }
}

/// @title Forwarder
/// @notice Test-only, Safe-like: holds ETH and lets its owner execute a call with value, as a
///         multisig's execTransaction does.
contract Forwarder {
    address public immutable owner;

    constructor() payable {
        owner = msg.sender;
    }

    receive() external payable {}

    function execute(address payable to, uint256 value, bytes calldata data) external {
        require(msg.sender == owner, "not the owner");
        (bool ok, ) = to.call{value: value}(data);
        require(ok, "call failed");
    }

    /// Pays each of `to` the same `value` (an exchange's batch payout).
    function payMany(address payable[] calldata to, uint256 value) external {
        require(msg.sender == owner, "not the owner");
        for (uint256 i = 0; i < to.length; i++) {
            (bool ok, ) = to[i].call{value: value}("");
            require(ok, "call failed");
        }
    }
}

/// @title RevertingPayer
/// @notice Test-only: payments that happen inside calls that revert, while the transaction
///         itself succeeds (or, for `payThenRevert` called directly, fails).
contract RevertingPayer {
    error Undone();

    /// Pays `to`, then reverts: the payment is undone with it.
    function payThenRevert(address payable to) external payable {
        (bool ok, ) = to.call{value: msg.value}("");
        require(ok, "call failed");
        revert Undone();
    }

    /// Calls payThenRevert and swallows its failure: the transaction succeeds, the inner
    /// payment (itself a successful CALL inside a reverted parent) does not count.
    function payInsideRevertedCall(address payable to) external payable {
        try this.payThenRevert{value: msg.value}(to) {} catch {}
    }

    /// A CALL with value that reverts in the callee (the callee is this contract, which has no
    /// receive function), swallowed; then a real payment of `kept` to `to`.
    function failedCallThenPay(address payable to, uint256 kept) external payable {
        (bool ok, ) = address(this).call{value: msg.value - kept}(hex"deadbeef");
        require(!ok, "expected the call to fail");
        (ok, ) = to.call{value: kept}("");
        require(ok, "call failed");
    }
}
