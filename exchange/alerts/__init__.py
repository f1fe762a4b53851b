"""Alerts from Alertmanager, kept for operators: its webhook stores them, staff list and resolve
them (a resolution silences the alert in Alertmanager for a while), and the admin shows them.

- models.py     Alert: one firing episode of one Alertmanager alert (fingerprint + start)
- services.py   alerts_receive (the webhook), alert_resolve (note + silence)
- alertmanager.py  the v2 API client (silences)
- selectors.py  alert_list
- apis.py       POST alerts/webhook, GET alerts, POST alerts/{id}/resolve
"""
