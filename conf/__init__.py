"""rolefusion's configs. The build ships this folder inside the package as ``rolefusion.conf``,
so Hydra finds it at ``pkg://rolefusion.conf`` in an installed wheel as well as in a checkout."""
