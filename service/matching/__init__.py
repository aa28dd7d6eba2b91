"""Pure matching engine: social organizations' offers to social-work stations' needs (no I/O, no web, no DB)."""

from service.matching.problem import Problem
from service.matching.solver import Solution, objective_of, solve

__all__ = ["Problem", "Solution", "objective_of", "solve"]
