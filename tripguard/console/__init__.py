"""The console's kit: what every console page is built with (the shell's layout and navigation, lists,
forms, confirmations, readable values, labels, live streams, one Jinja environment, the static files).

It sits above the platform (core, audit, security, vault, privacy, notify) and below the business
domains, whose `console.py` pages import it; it imports no domain. The pages that compose the domains
(the home page's figures, the public share page) are the web shell's (`tripguard.web`)."""
