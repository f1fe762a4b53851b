// SPDX-License-Identifier: UNLICENSED
pragma solidity ^0.8.24;

import {TestToken} from "./TestToken.sol";

/// @title Hostile ERC-20 for tests: once armed, its next transfer or transferFrom first calls
/// `target` with `data` (e.g. back into the vault) and bubbles up that call's revert.
/// @dev Bubbling rather than swallowing the inner revert lets a test see exactly which guard
/// stopped the re-entry.
contract ReentrantToken is TestToken {
    address public target;
    bytes public data;

    constructor() TestToken("Reentrant", "EVIL", 18) {}

    function arm(address target_, bytes calldata data_) external {
        target = target_;
        data = data_;
    }

    function transfer(address to, uint256 value) public override returns (bool) {
        _reenter();
        return super.transfer(to, value);
    }

    function transferFrom(address from, address to, uint256 value) public override returns (bool) {
        _reenter();
        return super.transferFrom(from, to, value);
    }

    function _reenter() private {
        address to = target;
        if (to == address(0)) return;
        // Disarm first so the attack runs once rather than recursing until out of gas.
        target = address(0);
        (bool ok, bytes memory reason) = to.call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(reason, 0x20), mload(reason))
            }
        }
    }
}
