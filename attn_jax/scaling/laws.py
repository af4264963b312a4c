"""Scaling laws as plain numpy functions, and a registry of them.

Each law maps its inputs (model size N, tokens D or compute C, passed by name) and a dict of
parameters to a predicted loss. The fitters (`approach3`, `wls`) and the plots read laws
only through `LAWS`, so a new law is one entry here.

Laws:
  power_offset   L = E + A x^-alpha                        (x in {N, D, C})
  kaplan         L = (x_c / x)^alpha                       Kaplan et al. 2020, eq. 1.1-1.3
  kaplan_nd      L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D   Kaplan et al. 2020, eq. 1.5
  chinchilla     L = E + A / N^alpha + B / D^beta          Hoffmann et al. 2022, eq. 2
  saturating     L = a (C + d)^-b + c                      Zhai et al. 2022 (ViT scaling)
  broken_power   L = a + b x^-c0 (1 + (x/d1)^(1/f1))^(-c1 f1)   Caballero et al. 2023
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import numpy as np

Params = Mapping[str, float]


@dataclasses.dataclass(frozen=True)
class Param:
    """One fitted parameter: `log` ones are positive and optimized as their logarithm.

    Attributes:
      name: the name used in formulas and in fit.json.
      log: optimize log(value) (value > 0) instead of the value itself.
      lo, hi: bounds on the optimized quantity (on log(value) when `log`).
    """

    name: str
    log: bool
    lo: float
    hi: float


@dataclasses.dataclass(frozen=True)
class Law:
    """A scaling law: inputs, parameters, the function and its source.

    Attributes:
      name: registry key.
      inputs: names of the keyword inputs, e.g. ("x",) or ("N", "D").
      params: the parameters, in a fixed order.
      fn: fn(params: dict, **inputs) -> predicted loss (broadcasts over arrays).
      formula: the formula as text, for reports.
      source: the paper it comes from.
    """

    name: str
    inputs: tuple[str, ...]
    params: tuple[Param, ...]
    fn: Callable[..., np.ndarray]
    formula: str
    source: str

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def __call__(self, params: Params, **inputs) -> np.ndarray:
        missing = set(self.inputs) - set(inputs)
        if missing:
            raise ValueError(f"law {self.name!r} needs inputs {self.inputs}, missing {missing}")
        return self.fn(params, **{k: np.asarray(inputs[k], np.float64) for k in self.inputs})


def power_offset(p: Params, x):
    return p["E"] + p["A"] * np.power(x, -p["alpha"])


def kaplan(p: Params, x):
    return np.power(p["x_c"] / x, p["alpha"])


def kaplan_nd(p: Params, N, D):
    ratio = p["alpha_N"] / p["alpha_D"]
    return np.power(np.power(p["N_c"] / N, ratio) + p["D_c"] / D, p["alpha_D"])


def chinchilla(p: Params, N, D):
    return p["E"] + p["A"] * np.power(N, -p["alpha"]) + p["B"] * np.power(D, -p["beta"])


def saturating(p: Params, x):
    return p["a"] * np.power(x + p["d"], -p["b"]) + p["c"]


def broken_power(p: Params, x):
    # In logs: (x/d1)^(1/f1) overflows for small f1 long before the product does.
    z = (np.log(x) - np.log(p["d1"])) / p["f1"]
    log_term = np.log(p["b"]) - p["c0"] * np.log(x) - p["c1"] * p["f1"] * np.logaddexp(0.0, z)
    return p["a"] + np.exp(log_term)


_BIG = 60.0  # bound on log-parameters: e^60 ~ 1e26, beyond any N, D or C we fit

LAWS: dict[str, Law] = {
    "power_offset": Law(
        "power_offset",
        ("x",),
        (Param("E", False, 0.0, 1e3), Param("A", True, -_BIG, _BIG), Param("alpha", False, 0, 5)),
        power_offset,
        "L = E + A x^-alpha",
        "Hoffmann et al. 2022; Kaplan et al. 2020 with an irreducible term",
    ),
    "kaplan": Law(
        "kaplan",
        ("x",),
        (Param("x_c", True, -_BIG, _BIG), Param("alpha", False, 0.0, 5.0)),
        kaplan,
        "L = (x_c / x)^alpha",
        "Kaplan et al. 2020, eqs. 1.1-1.3",
    ),
    "kaplan_nd": Law(
        "kaplan_nd",
        ("N", "D"),
        (
            Param("N_c", True, -_BIG, _BIG),
            Param("D_c", True, -_BIG, _BIG),
            Param("alpha_N", False, 1e-4, 5.0),
            Param("alpha_D", False, 1e-4, 5.0),
        ),
        kaplan_nd,
        "L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D",
        "Kaplan et al. 2020, eq. 1.5",
    ),
    "chinchilla": Law(
        "chinchilla",
        ("N", "D"),
        (
            Param("E", False, 0.0, 1e3),
            Param("A", True, -_BIG, _BIG),
            Param("B", True, -_BIG, _BIG),
            Param("alpha", False, 0.0, 5.0),
            Param("beta", False, 0.0, 5.0),
        ),
        chinchilla,
        "L = E + A / N^alpha + B / D^beta",
        "Hoffmann et al. 2022, eq. 2",
    ),
    "saturating": Law(
        "saturating",
        ("x",),
        (
            Param("a", True, -_BIG, _BIG),
            Param("b", False, 0.0, 5.0),
            Param("c", False, 0.0, 1e3),
            Param("d", True, -_BIG, _BIG),
        ),
        saturating,
        "L = a (C + d)^-b + c",
        "Zhai et al. 2022, Scaling Vision Transformers",
    ),
    "broken_power": Law(
        "broken_power",
        ("x",),
        (
            Param("a", False, 0.0, 1e3),
            Param("b", True, -_BIG, _BIG),
            Param("c0", False, -2.0, 5.0),
            Param("c1", False, -5.0, 5.0),
            Param("d1", True, -_BIG, _BIG),
            Param("f1", True, np.log(1e-3), np.log(1e2)),
        ),
        broken_power,
        "L = a + b x^-c0 (1 + (x/d1)^(1/f1))^(-c1 f1)",
        "Caballero et al. 2023, Broken Neural Scaling Laws, eq. 1 (one break)",
    ),
}


def get_law(name: str) -> Law:
    """Returns the law registered as `name`; raises ValueError naming the valid keys."""
    if name not in LAWS:
        raise ValueError(f"unknown scaling law {name!r}; valid: {sorted(LAWS)}")
    return LAWS[name]
