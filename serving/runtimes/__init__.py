"""Model runtimes: what runs a model version on an image and answers Loupe's shapes."""
