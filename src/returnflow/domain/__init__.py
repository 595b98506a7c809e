"""Values and rules, no I/O: money, the order, the request, the record, the policy."""
