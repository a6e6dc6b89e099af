"""Product review: which SKUs the plan covers, month by month, and how each one behaves.

The first S&OP step decides the portfolio before anybody forecasts it: a new product has no
history of its own and borrows a like-item's, scaled by a launch ramp; a product being phased
out fades to zero by its discontinue month (`portfolio`). The segmentation (ABC by revenue,
XYZ by demand variability, Syntetos-Boylan intermittency) tells later steps which forecasting
method and which service level fit each SKU (`segmentation`). `findings` holds the rules the
portfolio checkpoint enforces.
"""
