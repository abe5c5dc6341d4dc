"""Ways out: one adapter per channel (email through SendGrid, SMS through Twilio).

``base`` holds the contract every adapter fills, ``registry`` the explicit list of
built-ins, ``webhooks`` the pure verification of what the providers post back.
"""
