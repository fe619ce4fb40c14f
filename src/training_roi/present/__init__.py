"""Present: the product's results for people (console tables) and machines (JSON)."""
