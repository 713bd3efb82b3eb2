"""Local fakes of the outside services, speaking their real wire formats (samples in wire/)."""
