"""Demand review: from a statistical forecast to the consensus demand plan, and its accuracy.

The statistical forecast (`sop_pipeline.forecast`) knows only history. This step adds what
history cannot know: launches borrow a like-item's forecast scaled by the launch ramp, phase-outs
fade to zero (`lifecycle`), and the sales and marketing teams' inputs are layered on top, each
layer kept with its owner and reason (`consensus`). Keeping every cycle's layers is what makes
forecast value added measurable: when actuals arrive, each layer is scored against the
statistical forecast and a seasonal naive forecast (`accuracy`), so the organisation learns which
inputs improve the plan. `backtest` turns the forecast engine's backtest into the stored table
and the gate's comparison with seasonal naive.
"""

STATISTICAL = "statistical"
CONSENSUS = "consensus"
NAIVE = "seasonal_naive"
