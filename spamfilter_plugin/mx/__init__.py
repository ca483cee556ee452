"""MX records: a gateway filter filters nothing until a domain's MX records point at it.

The parts, each usable and tested on its own:

* :mod:`.probe`: does the destination accept mail for the domain?  An SMTP
  conversation up to ``RCPT TO:<postmaster@domain>``, never ``DATA``.
* :mod:`.lookup`: what MX records does DNS give for the domain, asked of a chosen
  (the panel's authoritative) server, and do they match the vendor's?
* :mod:`.plan`: which records to remove and add to switch a domain's MX to a vendor, and
  to put back what was recorded, never leaving a zone without an MX record.
"""
