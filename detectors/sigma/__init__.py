"""Sigma rules (pySigma) compiled to in-process matchers over ECS events, with correlation rules on the stream."""

from detectors.sigma.compile import CompiledRule, compile_rule
from detectors.sigma.engine import RuleSet, SigmaEngine
from detectors.sigma.errors import RuleParseError, SigmaEngineError, UnsupportedFeature
from detectors.sigma.loader import LoadReport, Problem, load_rules

__all__ = [
    "CompiledRule",
    "LoadReport",
    "Problem",
    "RuleParseError",
    "RuleSet",
    "SigmaEngine",
    "SigmaEngineError",
    "UnsupportedFeature",
    "compile_rule",
    "load_rules",
]
