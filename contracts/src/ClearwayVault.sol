// SPDX-License-Identifier: UNLICENSED
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title Clearway custody vault and batch settlement
/// @notice Holds ERC-20 custody for traders. Deposits credit the depositor's vault balance; only
/// the operator moves balances, by settling netted trade batches or paying out withdrawals.
/// @dev Custody and settlement live in one contract so a settlement is plain storage writes, with
/// no cross-contract call per delta. Settlement cost is dominated by one cold SLOAD + SSTORE per
/// (account, token) delta; nothing is stored per trade except the batch's Merkle root.
contract ClearwayVault is AccessControl, Pausable, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");

    /// @notice A netted balance change for one account in one token, in base units.
    struct AccountDelta {
        address account;
        int256 amount;
    }

    /// @notice All deltas of one token in a batch; they must sum to zero (fees are deltas that
    /// credit the fee account). Grouping by token makes the zero-sum check a running sum and lets
    /// the token's balance mapping and allowlist entry be looked up once per group.
    struct TokenDeltas {
        address token;
        AccountDelta[] deltas;
    }

    mapping(address token => mapping(address account => uint256)) private _balances;

    /// @notice Tokens accepted for deposit and settlement. Removing a token stops new deposits
    /// and trading but never traps funds: payouts of a removed token still work.
    mapping(address token => bool) public isTokenAllowed;

    /// @notice Merkle root of each settled batch's trade ids (zero for an unsettled batch id).
    mapping(uint64 batchId => bytes32) public batchRoot;

    mapping(bytes32 withdrawalId => bool) public withdrawalPaid;

    /// @notice The only batch id settleBatch accepts next; batch ids start at 1.
    uint64 public nextBatchId = 1;

    /// @notice Where the off-chain side credits trading fees; informational, the contract does
    /// not enforce it (fees arrive as ordinary deltas).
    address public feeAccount;

    event Deposited(address indexed depositor, address indexed token, uint256 amount);
    event BatchSettled(uint64 indexed batchId, bytes32 tradesRoot, uint256 deltaCount);
    event WithdrawalPaid(
        bytes32 indexed withdrawalId,
        address indexed account,
        address indexed token,
        address to,
        uint256 amount
    );
    event TokenAllowlisted(address indexed token, bool allowed);
    event FeeAccountChanged(address indexed previous, address indexed current);

    error BatchOutOfOrder(uint64 expected, uint64 got);
    error EmptyTradesRoot();
    error DeltasNotBalanced(address token);
    error InsufficientBalance(address account, address token, uint256 balance, uint256 needed);
    error WithdrawalAlreadyPaid(bytes32 withdrawalId);
    error TokenNotAllowed(address token);
    error ZeroAmount();
    error ZeroAddress();

    constructor(address admin, address operator, address feeAccount_) {
        if (admin == address(0) || operator == address(0) || feeAccount_ == address(0)) {
            revert ZeroAddress();
        }
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, operator);
        feeAccount = feeAccount_;
        emit FeeAccountChanged(address(0), feeAccount_);
    }

    // ------------------------------------------------------------------------------- traders

    /// @notice Pull `amount` of `token` from the caller (who must have approved the vault) and
    /// credit it to the caller's vault balance.
    /// @dev Credits what actually arrived, so a fee-on-transfer token cannot inflate balances.
    function deposit(address token, uint256 amount) external nonReentrant whenNotPaused {
        if (!isTokenAllowed[token]) revert TokenNotAllowed(token);
        if (amount == 0) revert ZeroAmount();
        IERC20 erc20 = IERC20(token);
        uint256 before = erc20.balanceOf(address(this));
        erc20.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = erc20.balanceOf(address(this)) - before;
        if (received == 0) revert ZeroAmount();
        _balances[token][msg.sender] += received;
        emit Deposited(msg.sender, token, received);
    }

    function balanceOf(address account, address token) external view returns (uint256) {
        return _balances[token][account];
    }

    /// @notice True when `tradeId` is a leaf of batch `batchId`'s trades root.
    /// @param tradeId keccak256 of the UTF-8 trade id string.
    /// @dev Leaves are double-hashed, keccak256(keccak256(abi.encode(tradeId))), as OpenZeppelin
    /// recommends (and its StandardMerkleTree does), so no inner node can pass for a leaf.
    function verifyTrade(uint64 batchId, bytes32 tradeId, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        bytes32 root = batchRoot[batchId];
        if (root == bytes32(0)) return false;
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(tradeId))));
        return MerkleProof.verifyCalldata(proof, root, leaf);
    }

    // ------------------------------------------------------------------------------ operator

    /// @notice Apply the netted balance changes of trade batch `batchId` and record its root.
    /// @dev Batches settle strictly in sequence, so a replayed or skipped batch reverts and each
    /// trade settles at most once. Grouping by token is required: every group must sum to zero.
    function settleBatch(uint64 batchId, bytes32 tradesRoot, TokenDeltas[] calldata groups)
        external
        onlyRole(OPERATOR_ROLE)
        nonReentrant
        whenNotPaused
    {
        uint64 expected = nextBatchId;
        if (batchId != expected) revert BatchOutOfOrder(expected, batchId);
        if (tradesRoot == bytes32(0)) revert EmptyTradesRoot();

        uint256 deltaCount;
        uint256 groupCount = groups.length;
        for (uint256 g; g < groupCount;) {
            TokenDeltas calldata group = groups[g];
            address token = group.token;
            if (!isTokenAllowed[token]) revert TokenNotAllowed(token);
            mapping(address => uint256) storage balances = _balances[token];
            AccountDelta[] calldata deltas = group.deltas;
            uint256 n = deltas.length;
            int256 sum;
            for (uint256 i; i < n;) {
                address account = deltas[i].account;
                int256 amount = deltas[i].amount;
                if (amount < 0) {
                    // Checked negation: int256.min cannot be a real debit and panics here.
                    uint256 needed = uint256(-amount);
                    uint256 balance = balances[account];
                    if (balance < needed) {
                        revert InsufficientBalance(account, token, balance, needed);
                    }
                    unchecked {
                        balances[account] = balance - needed;
                    }
                } else {
                    // Stays checked: a credit can land before the debits that fund it.
                    balances[account] += uint256(amount);
                }
                sum += amount;
                unchecked {
                    ++i;
                }
            }
            if (sum != 0) revert DeltasNotBalanced(token);
            unchecked {
                deltaCount += n;
                ++g;
            }
        }

        batchRoot[batchId] = tradesRoot;
        unchecked {
            nextBatchId = expected + 1;
        }
        emit BatchSettled(batchId, tradesRoot, deltaCount);
    }

    /// @notice Pay withdrawal `withdrawalId`: debit `account`'s vault balance and send the
    /// tokens to `to`. Each withdrawal id pays at most once, so a retried payout is harmless.
    function payout(bytes32 withdrawalId, address account, address token, uint256 amount, address to)
        external
        onlyRole(OPERATOR_ROLE)
        nonReentrant
        whenNotPaused
    {
        if (withdrawalPaid[withdrawalId]) revert WithdrawalAlreadyPaid(withdrawalId);
        if (amount == 0) revert ZeroAmount();
        if (to == address(0)) revert ZeroAddress();
        uint256 balance = _balances[token][account];
        if (balance < amount) revert InsufficientBalance(account, token, balance, amount);
        withdrawalPaid[withdrawalId] = true;
        unchecked {
            _balances[token][account] = balance - amount;
        }
        IERC20(token).safeTransfer(to, amount);
        emit WithdrawalPaid(withdrawalId, account, token, to, amount);
    }

    // --------------------------------------------------------------------------------- admin

    function allowToken(address token) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (token == address(0)) revert ZeroAddress();
        isTokenAllowed[token] = true;
        emit TokenAllowlisted(token, true);
    }

    function disallowToken(address token) external onlyRole(DEFAULT_ADMIN_ROLE) {
        isTokenAllowed[token] = false;
        emit TokenAllowlisted(token, false);
    }

    function setFeeAccount(address feeAccount_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (feeAccount_ == address(0)) revert ZeroAddress();
        emit FeeAccountChanged(feeAccount, feeAccount_);
        feeAccount = feeAccount_;
    }

    function pause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _unpause();
    }
}
