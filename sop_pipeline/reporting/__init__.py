"""Everything drawn: the review steps' charts (`charts`) and the executive review pack (`pack`),
in one matplotlib style (`style`). Charts are built with matplotlib's object API (no pyplot
state), returned as figures so that tests can read what was plotted, and rendered to PNG by
`style.to_png`."""
