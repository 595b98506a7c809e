"""The statechart, the table derived from it, and the effect vocabulary."""
