"""rolefusion's Hydra plugins. Hydra accepts a sweeper only from the ``hydra_plugins``
namespace, so the class Hydra instantiates lives here and the work in :mod:`rolefusion.runs`."""
