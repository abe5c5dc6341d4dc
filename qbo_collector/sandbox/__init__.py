"""Local stand-ins for Intuit (OAuth + Accounting API v3), SendGrid and Twilio.

They speak the vendors' real JSON over real HTTP on loopback so that the unmodified
vendor client libraries talk to them by configuration only. See ``server.Sandbox``.
"""
