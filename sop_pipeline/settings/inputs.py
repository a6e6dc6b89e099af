"""`models/inputs.yaml`: how the company's CSV files are written."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from sop_pipeline.settings.base import StrictModel


class InputSettings(StrictModel):
    # Field separator of the CSV files: "," (the default) or ";" (what Excel writes where the
    # decimal separator is a comma).
    delimiter: Literal[",", ";", "\t"] = ","
    # Decimal separator of numbers: "." or ",". With ",", a "." inside a number is read as a
    # thousands separator (1.234,5 = 1234.5).
    decimal: Literal[".", ","] = "."

    @model_validator(mode="after")
    def _separators_differ(self):
        if self.delimiter == self.decimal:
            raise ValueError("delimiter and decimal separator must differ")
        return self
