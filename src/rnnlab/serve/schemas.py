"""Request bodies (pydantic, strict types: a number is not a text, extra fields are refused)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, StrictBool, StrictFloat, StrictInt, StrictStr

__all__ = ["PredictRequest", "GenerateRequest", "ForecastRequest"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class PredictRequest(_Strict):
    texts: list[StrictStr]
    beam: StrictInt | None = None  # translator only: the beam width (default: the run's)


class GenerateRequest(_Strict):
    prime: StrictStr = ""
    length: StrictInt = 200
    temperature: StrictFloat | StrictInt = 1.0
    top_k: StrictInt | None = None
    top_p: StrictFloat | StrictInt | None = None
    seed: StrictInt | None = 0
    stream: StrictBool = False


class ForecastRequest(_Strict):
    history: list[StrictFloat | StrictInt] | None = None  # None: the series the run was trained on
    last_time: StrictStr | None = None  # ISO time of the last history value
