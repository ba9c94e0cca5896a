"""`tpt estimate`: what augmenting a whole corpus will cost, measured on a random sample of it."""
