"""Withdrawals: a trader asks (POST /api/v1/withdrawals), the limits are checked and the funds
held in one transaction, and a Temporal workflow (workflows/withdrawals, its id the withdrawal
id) walks the withdrawal through approval, payout on the vault, confirmation and the ledger.

- models.py      Withdrawal and its states, limits per asset / per account, address allowlist
- services.py    requests (race-free limits), decisions, the payout steps the activities run
- selectors.py   reads: a trader's withdrawals, effective limits, rolling window sums
- temporal.py    starting and signalling workflows from Django; withdrawals_resume
- events.py      changes pushed to the trader's /ws/v1/user socket
- apis.py        REST; errors.py lists every error code with its status
- admin.py       the approval queue, approve / reject actions, limits and circuit breakers
- conf.py        every setting read here, with its default
"""
