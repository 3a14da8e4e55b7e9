"""Container engines and the farm's compile image: how a compile host's engine is called
(:mod:`farm.containers.engine`), this machine's podman as a stand-in for Docker
(:mod:`farm.containers.podman`), and the compile image built here without pulling anything
(:mod:`farm.containers.image`)."""
