"""dstl: find the ten object classes of the Kaggle "Dstl Satellite Imagery Feature Detection"
competition in very-high-resolution 20-band satellite imagery.

The package is organised one concern per module; see README.md for the map.
"""

__version__ = "0.1.0"
