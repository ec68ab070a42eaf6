"""Multi-objective wrappers (MO-Gymnasium's convention: a vector reward and a ``reward_space``).

Importing this package registers the wrappers with `envs.make`, so a manifest's ``env.wrappers``
can name them: ``LinearScalarization``, ``ChebyshevScalarization``, ``WeightConditionedObservation``,
``ObjectiveSubsampling``, ``NormalizeRewardVector``.
"""

from envs.make import register_wrapper
from envs.mo.common import MOWrapperError, check_weights, find_wrapper, reward_space_of, vector_reward_dim
from envs.mo.normalization import NormalizeRewardVector
from envs.mo.scalarization import ChebyshevScalarization, LinearScalarization
from envs.mo.subsampling import ObjectiveSubsampling
from envs.mo.weights import WEIGHT_DISTRIBUTIONS, WeightConditionedObservation, sample_weights

__all__ = ["WEIGHT_DISTRIBUTIONS", "ChebyshevScalarization", "LinearScalarization", "MOWrapperError",
           "NormalizeRewardVector", "ObjectiveSubsampling", "WeightConditionedObservation", "check_weights",
           "find_wrapper", "reward_space_of", "sample_weights", "vector_reward_dim"]

for _cls in (LinearScalarization, ChebyshevScalarization, WeightConditionedObservation, ObjectiveSubsampling,
             NormalizeRewardVector):
    register_wrapper(_cls.__name__, _cls)
