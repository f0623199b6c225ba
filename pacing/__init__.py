"""pacing: deadlines and backward-planned pacing for California special-education CIM."""

__version__ = "0.1.0"
