"""The fairness part of the drift job's configuration: which attributes, grouped how.

The CronJob passes the ModelMonitor's `spec.fairness` as one JSON flag (`--fairness`); this
model parses it in the same camelCase, so the operator and the job share the shape without
sharing code (the job does not import the operator).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

GroupName = Annotated[str, Field(min_length=1, max_length=63)]


class _Frozen(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )


class CategoryGroup(_Frozen):
    """A group of a categorical attribute: the categories it gathers."""

    name: GroupName
    values: tuple[str, ...] = Field(min_length=1)


class NumericBin(_Frozen):
    """A group of a numerical attribute: values below `below` not taken by an earlier bin;
    the last bin has no bound."""

    name: GroupName
    below: float | None = None


class FairnessAttribute(_Frozen):
    feature: Annotated[str, Field(min_length=1, max_length=256)]
    groups: tuple[CategoryGroup, ...] = ()
    bins: tuple[NumericBin, ...] = ()
    reference: GroupName

    @model_validator(mode="after")
    def _consistent(self) -> FairnessAttribute:
        if self.groups and self.bins:
            raise ValueError(f"{self.feature}: groups and bins exclude each other")
        names = [group.name for group in self.groups] + [bin_.name for bin_ in self.bins]
        if len(names) != len(set(names)):
            raise ValueError(f"{self.feature}: a group name is used twice")
        values = [value for group in self.groups for value in group.values]
        if len(values) != len(set(values)):
            raise ValueError(f"{self.feature}: a category is in two groups")
        if self.bins:
            bounds = [b.below for b in self.bins[:-1] if b.below is not None]
            if len(bounds) != len(self.bins) - 1 or self.bins[-1].below is not None:
                raise ValueError(f"{self.feature}: only the last bin has no `below`")
            if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
                raise ValueError(f"{self.feature}: bins must ascend")
        if names and self.reference not in names:
            raise ValueError(f"{self.feature}: reference {self.reference!r} is not a group")
        return self


class FairnessConfig(_Frozen):
    favourable_decision: Annotated[str, Field(min_length=1, max_length=32)]
    min_rows_per_group: Annotated[int, Field(ge=1)] = 30
    min_disparate_impact_ratio: Annotated[float, Field(gt=0, le=1)] = 0.8
    max_disparate_impact_ratio: Annotated[float, Field(ge=1)] = 1.25
    attributes: tuple[FairnessAttribute, ...] = Field(min_length=1, max_length=10)

    @model_validator(mode="after")
    def _distinct(self) -> FairnessConfig:
        features = [attribute.feature for attribute in self.attributes]
        if len(features) != len(set(features)):
            raise ValueError("an attribute is listed twice")
        return self
