"""Frozen configuration dataclasses, loaded from TOML and carried inside models.

``FeatureSpec`` is the single definition of the features (DESIGN.md section 5). It
travels inside every exported ONNX model, so the online pipeline computes exactly
what the model was trained on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar, get_args, get_type_hints

from emomon.errors import ConfigError

FEATURE_KINDS = ("de", "psd")
#: ``kinds=("raw",)``: band-limited EEG windows for raw-EEG models (layout "eeg").
RAW_KIND = "raw"
LAYOUTS = ("flat", "grid", "eeg")


@dataclass(frozen=True)
class Band:
    """A frequency band ``[lo, hi]`` in Hz."""

    name: str
    lo: float
    hi: float

    def __post_init__(self) -> None:
        if not (0 < self.lo < self.hi):
            raise ConfigError(
                f"band '{self.name}': need 0 < lo < hi, got lo={self.lo} hi={self.hi}"
            )


DEFAULT_BANDS: tuple[Band, ...] = (
    Band("theta", 4.0, 8.0),
    Band("alpha", 8.0, 13.0),
    Band("beta", 13.0, 30.0),
    Band("gamma", 30.0, 45.0),
)


@dataclass(frozen=True)
class FeatureSpec:
    """How windows of EEG become features (DESIGN.md section 5).

    Attributes
    ----------
    bands : tuple of Band
        Frequency bands, default theta/alpha/beta/gamma.
    kinds : tuple of str
        Feature kinds in output order, among ``"de"`` and ``"psd"``; or
        ``("raw",)`` for raw-EEG models: the referenced signal band-passed (causal,
        from the lowest to the highest band edge) as (n_channels, window) windows.
    window_s, hop_s : float
        Window length and hop in seconds. The hop does not change the features of
        a window, only how many windows there are.
    warmup_s : float
        Seconds after a start or reset whose samples end no window (filter
        transients).
    car : bool
        Common average reference before filtering.
    notch : float or None
        Mains frequency to notch (50 or 60 Hz), causal IIR notch with ``notch_q``
        (default 10).
    filter_order : int
        Butterworth band-pass order (per band).
    welch_seg_s : float
        Welch segment length in seconds (Hann window, 50% overlap).
    layout : str
        ``"flat"`` (n_features * n_channels), ``"grid"`` (n_features, 8, 9), or
        ``"eeg"`` (n_channels, n_times) with ``kinds=("raw",)``.
    baseline : bool
        Subtract the mean features of the trial's resting baseline.
    precomputed : str
        ``""`` for features emomon computes (causally, the same offline and
        live). Otherwise the reader whose precomputed features the model was
        trained on (``"seed-features"``): ``kinds`` are then that dataset's
        feature families (``"de_LDS"``), ``bands`` its bands, and the features
        cannot be computed live (``emomon stream`` refuses such a model).
    """

    bands: tuple[Band, ...] = DEFAULT_BANDS
    kinds: tuple[str, ...] = FEATURE_KINDS
    window_s: float = 2.0
    hop_s: float = 0.5
    warmup_s: float = 1.0
    car: bool = True
    notch: float | None = None
    # Q=10 (6 Hz wide at 60 Hz): consumer amplifiers' sample clocks are off by
    # ~0.1-0.2%, which moves mains by ~0.1 Hz; a Q=30 notch then removes only
    # ~20 dB (measured on the real OpenBCI Cyton sample). 45 Hz loses 0.15 dB.
    notch_q: float = 10.0
    filter_order: int = 4
    welch_seg_s: float = 1.0
    layout: str = "grid"
    baseline: bool = False
    precomputed: str = ""

    def __post_init__(self) -> None:
        bands = tuple(
            b if isinstance(b, Band) else _band_from_any(b) for b in self.bands
        )
        object.__setattr__(self, "bands", bands)
        object.__setattr__(self, "kinds", tuple(self.kinds))
        if not bands:
            raise ConfigError("features.bands: at least one band is required")
        if len({b.name for b in bands}) != len(bands):
            raise ConfigError("features.bands: band names must be unique")
        if self.precomputed:
            bad = [k for k in self.kinds if not k or not str(k).isidentifier()]
            if bad or not self.kinds or len(set(self.kinds)) != len(self.kinds):
                raise ConfigError(
                    f"features.kinds: {list(self.kinds)} are not names of "
                    f"{self.precomputed}'s feature families"
                )
            if self.layout == "eeg" or self.baseline:
                raise ConfigError(
                    "precomputed features have no raw EEG and no baseline: "
                    'features.layout "flat" or "grid", baseline false'
                )
        elif self.kinds == (RAW_KIND,):
            if self.layout != "eeg":
                raise ConfigError('features.kinds ["raw"] needs features.layout "eeg"')
        else:
            bad = [k for k in self.kinds if k not in FEATURE_KINDS]
            if bad or not self.kinds or len(set(self.kinds)) != len(self.kinds):
                raise ConfigError(
                    f"features.kinds: {bad or list(self.kinds)}; choose from "
                    f"{list(FEATURE_KINDS)} or use ['raw'] alone"
                )
            if self.layout == "eeg":
                raise ConfigError('features.layout "eeg" needs features.kinds ["raw"]')
        if self.is_raw and self.baseline:
            raise ConfigError("features.baseline applies to band features, not raw EEG")
        for name in ("window_s", "hop_s", "welch_seg_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"features.{name} must be > 0")
        if self.warmup_s < 0:
            raise ConfigError("features.warmup_s must be >= 0")
        if self.welch_seg_s > self.window_s:
            raise ConfigError("features.welch_seg_s must not exceed window_s")
        if self.notch is not None and self.notch not in (50.0, 60.0):
            raise ConfigError(
                f"features.notch must be 50, 60 or none, got {self.notch}"
            )
        if not 1 <= self.filter_order <= 8:
            raise ConfigError("features.filter_order must be within 1-8")
        if self.layout not in LAYOUTS:
            raise ConfigError(f"features.layout must be one of {list(LAYOUTS)}")

    @property
    def band_names(self) -> tuple[str, ...]:
        """Band names in order (``"theta"``, ...)."""
        return tuple(b.name for b in self.bands)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Per-channel feature names in output order (``"de_theta"``, ...)."""
        return tuple(f"{k}_{b.name}" for k in self.kinds for b in self.bands)

    @property
    def causal(self) -> bool:
        """Whether the features can be computed live (False when precomputed)."""
        return not self.precomputed

    @property
    def is_raw(self) -> bool:
        """Whether the spec gives raw EEG windows (``kinds=("raw",)``)."""
        return not self.precomputed and self.kinds == (RAW_KIND,)

    @property
    def n_features(self) -> int:
        """Number of features per channel (0 for raw specs).

        A raw window's length depends on the sampling rate: see
        ``ExtractorSettings.n_features``.
        """
        return 0 if self.is_raw else len(self.kinds) * len(self.bands)

    def raw_band(self) -> tuple[float, float]:
        """Pass band of raw windows: lowest to highest band edge (Hz)."""
        return min(b.lo for b in self.bands), max(b.hi for b in self.bands)

    def max_band_hz(self) -> float:
        """Return the highest band edge in Hz."""
        return max(b.hi for b in self.bands)

    def to_dict(self) -> dict[str, Any]:
        """Return the spec as plain JSON/TOML values (bands as ``[name, lo, hi]``).

        :meth:`from_dict` reads it back.
        """
        d = dataclasses.asdict(self)
        d["bands"] = [[b.name, b.lo, b.hi] for b in self.bands]
        d["kinds"] = list(self.kinds)
        if not self.precomputed:
            del d["precomputed"]  # the specs (and digests) of computed features
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        """Build a spec from a mapping (a TOML ``[features]`` table, :meth:`to_dict`).

        Raises
        ------
        ConfigError
            For an unknown key, a value of the wrong type or an invalid spec.
        """
        return from_mapping(cls, data, section="features")

    def digest(self) -> str:
        """Stable hash of the spec (hex), used in cache keys."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _band_from_any(value: Any) -> Band:
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - {"name", "lo", "hi"})
        if unknown:
            raise ConfigError(
                f"features.bands: unknown key {unknown[0]!r} in a band table; "
                "valid keys: name, lo, hi"
            )
        try:
            name, lo, hi = value["name"], value["lo"], value["hi"]
        except KeyError as exc:
            raise ConfigError(f"features.bands: band needs key {exc}") from None
    elif isinstance(value, list | tuple) and len(value) == 3:
        name, lo, hi = value
    else:
        raise ConfigError(
            f"features.bands: expected [name, lo, hi] or a table, got {value!r}"
        )
    if not isinstance(name, str) or not all(_is_number(v) for v in (lo, hi)):
        raise ConfigError(
            f"features.bands: expected [name, lo, hi] with a string name and "
            f"numbers in Hz, got {[name, lo, hi]!r}"
        )
    return Band(name, float(lo), float(hi))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


T = TypeVar("T")


def from_mapping(cls: type[T], data: Mapping[str, Any], *, section: str) -> T:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and bad types.

    Raises
    ------
    ConfigError
        Naming ``section.key`` for an unknown key or a value of the wrong type.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"[{section}] must be a table, got {type(data).__name__}")
    hints = get_type_hints(cls)
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown key {section}.{unknown[0]}; "
            f"valid keys: {', '.join(sorted(names))}"
        )
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        kwargs[key] = _coerce(value, hints[key], f"{section}.{key}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"[{section}]: {exc}") from None


def _coerce(value: Any, hint: Any, where: str) -> Any:
    text = str(hint)
    if value is None or (isinstance(value, str) and value.lower() == "none"):
        if "None" in text:
            return None
        raise ConfigError(f"{where}: a value is required")
    if hint is bool or text == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if hint is int or text == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float or text.startswith("float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):  # TOML allows nan and inf
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if hint is str or text.startswith("str"):
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if text.startswith("tuple"):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = get_args(hint)
        if args[:1] == (str,):  # tuple[str, ...]: names, not numbers
            bad = [v for v in value if not isinstance(v, str)]
            if bad:
                raise ConfigError(
                    f"{where}: expected a list of strings, got {bad[0]!r} in "
                    f"{list(value)!r} (quote it: {str(bad[0])!r})"
                )
        return tuple(value)
    if text.startswith("dict"):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return dict(value)
    return value


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file; errors name the file."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {p} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {p}: invalid TOML ({exc})") from None
