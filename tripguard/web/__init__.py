"""The web shell's pages that compose the domains: the console's home page and its figures (home,
dashboard), the public share page (share), health and metrics (health). The console kit they are built
with is `tripguard.console`."""
