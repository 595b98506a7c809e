"""The rules of a return, as pure functions over a :class:`~returnflow.decisions.change.Change`.

Given the record, the command or fact, the policy, the order snapshot and the time (all on
the change or passed in), a decision fires chart events, updates the record and plans
effects. It never reads a store, calls a port or a clock, and so runs the same in a test
with no store and no fake port as in the service. One module per concern:

========================  =====================================================================
:mod:`.request`           a request checked, assessed, approved, sent to review or declined;
                          an import opened approved
:mod:`.facts`             facts in any order: applied, parked until usable, or ignored
:mod:`.carrier`           carrier facts: picked up, delivered, returned to origin
:mod:`.warehouse`         the warehouse's receipt (with QC) and its Finished
:mod:`.completion`        completion and settlement: refunds, credits, fees, closing
:mod:`.exchange`          the exchange: hold, upsell payment, release, cancel
:mod:`.cancellation`      a cancel (and the wind-down an expiry shares)
:mod:`.review`            sending a return to a person, reopening it
:mod:`.reset`             a partial receipt reset into a new return
:mod:`.timers`            expiry and release reconciliation
:mod:`.results`           what a port answered, written back; a delivery given up, escalated
========================  =====================================================================

The shell around them: :mod:`returnflow.service` (commands and facts in, one commit each),
:mod:`returnflow.dispatch` (the outbox relay), :mod:`returnflow.timers` (what runs on a tick).
"""
