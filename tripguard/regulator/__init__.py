"""The regulator's feed: what the national ride-hailing platform (网约车监管信息交互平台, 行业平台) must
receive, built from TripGuard's own data and the operator's pass-through, sent reliably and minimally
(issue #31; ../shared/reference/regulator.md)."""
