"""MP134B R7: DCC and Device Alerts keep flowing after a failed Supplier's certificates go."""
