import collections

import pytest


def _sub_jaxprs(value):
    items = value if isinstance(value, (list, tuple)) else [value]
    for item in items:
        if hasattr(item, "eqns"):
            yield item
        elif hasattr(item, "jaxpr") and hasattr(item.jaxpr, "eqns"):
            yield item.jaxpr


def _count(jaxpr, counter):
    for eqn in jaxpr.eqns:
        counter[eqn.primitive.name] += 1
        for value in eqn.params.values():
            for sub in _sub_jaxprs(value):
                _count(sub, counter)
    return counter


@pytest.fixture
def count_primitives():
    """Primitive names of a closed jaxpr, sub-jaxprs included, with counts."""

    def count(closed_jaxpr):
        return _count(closed_jaxpr.jaxpr, collections.Counter())

    return count
